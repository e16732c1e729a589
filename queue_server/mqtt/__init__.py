"""MQTT for motcua: the topic/payload contract, an embedded broker, and a paho client factory.

`contract` is pure (pydantic only) and safe to import anywhere, including kiosks;
`broker` and `client` start processes or sockets only when called.
"""
