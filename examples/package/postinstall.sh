#!/bin/sh
# The units stay disabled until the operator enables one:
#   systemctl enable --now azaion-loader.service   (or mnt-azaion.mount)
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
