"""Kiosk tests: Kivy runs offscreen (no X server) with its own settings folder."""
from __future__ import annotations

import os
import tempfile

# Kivy reads these once, when it is first imported: set them before any test imports it.
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="motcua-kivy-"))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
