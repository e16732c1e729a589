"""The rules of a one-stop centre in plain Python: no Flask, MQTT, Kivy or SQL in here."""
