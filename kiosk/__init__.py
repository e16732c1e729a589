"""motcua kiosks: the ticket kiosk and the rating terminal (Kivy apps)."""
