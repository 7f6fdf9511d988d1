"""Machine protocols shared by the bridge, the worker and the tests: the MQTT wire contract (`events.py`),
firmware drivers (Marlin, GRBL, power plugs, RDM6300 badge readers), pass-through for G-code senders, and
simulators of real firmware on pseudo-terminals (`simulators/`). Standard library only (pyserial and paho
where a transport is used); never imports fablab or the bridge. mypy --strict."""
