"""The bridge daemon next to a machine: serial firmware, power plugs and badge readers on one side, MQTT
on the other, with an on-disk outbox for outages. Uses `devices` only, never the fablab app."""
