"""motcua kiosks: the ticket kiosk and the rating terminal (Kivy apps)."""
import os
from pathlib import Path

# python-escpos writes a capabilities cache into a fresh temporary folder in every process
# unless told where to keep it; keep one per user instead.
_escpos_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "motcua" / "escpos"
if "ESCPOS_CAPABILITIES_PICKLE_DIR" not in os.environ:
    try:
        _escpos_cache.mkdir(parents=True, exist_ok=True)
        os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = str(_escpos_cache)
    except OSError:  # a read-only home: escpos falls back to its temporary folder
        pass
