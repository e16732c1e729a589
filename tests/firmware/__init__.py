"""Tests of the device configs in firmware_config/."""
