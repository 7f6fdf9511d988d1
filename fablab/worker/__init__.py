"""The `fablab worker` process: MQTT ingest into the usage record (`ingest.py`: every payload stored or
dead-lettered, poison isolated, acknowledged after commit) and the timed jobs (`jobs.py`: one table of
name, interval and function). Uses services; never imported by web or api."""
