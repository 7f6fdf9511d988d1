"""``fablab-bridge CONFIG.toml``: run the bridge until SIGINT/SIGTERM. Exit status 2 on a bad config."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from fablab_bridge.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fablab-bridge", description="Connect machines (serial, power plugs, badge readers) to fablab over MQTT."
    )
    parser.add_argument("config", help="path to the bridge's TOML config")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"fablab-bridge: invalid config: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"config OK: bridge {config.id}, machines {', '.join(m.id for m in config.machines)}")
        return 0
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from fablab_bridge.app import Bridge  # after validation: a bad config needs no serial/MQTT imports

    try:
        bridge = Bridge(config)
    except OSError as exc:
        print(f"fablab-bridge: cannot use state_dir {config.state_dir}: {exc}", file=sys.stderr)
        return 2

    def shutdown(signum: int, frame: object) -> None:
        logging.getLogger("fablab_bridge").info("signal %s: stopping", signum)
        bridge.stop()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        bridge.start()
    except OSError as exc:  # a pass-through port in use or a pty link without permission
        print(f"fablab-bridge: {exc.strerror or exc}", file=sys.stderr)
        return 2
    bridge.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
