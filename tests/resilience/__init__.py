"""Resilience tests, each ending with "nothing lost, nothing counted twice, figures right" (ending.py).

Here: the network cut between devices and broker (test_network_cut), device clocks hours off
(test_device_clock), `motcua serve` killed again and again mid-write (test_kill_mid_write) and
the disk full (test_disk_full). The server killed mid-stream and the broker restarted
mid-stream are in tests/mqtt/test_resilience.py. Long forms: `pytest -m long`.
"""
