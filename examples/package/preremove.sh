#!/bin/sh
# On removal (not upgrade) stop and disable what the operator enabled.
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now azaion-loader.service mnt-azaion.mount >/dev/null 2>&1 || true
fi
