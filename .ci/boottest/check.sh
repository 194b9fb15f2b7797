#!/bin/bash
# azaion-boot-check: run inside the booted container by
# azaion-boot-check.service (After=azaion-loader.service). It drives the
# loader as an operator would, through systemctl, mount and the mount
# point, and writes one line per check to /out/result ("ok NAME" or
# "FAIL NAME: why") and "done" at the end. Its unit saves the journal and
# powers off when it ends, however it ends.
set -u
. /etc/azaion-boot-check.env # FOLDER NAME SHA LISTEN
out=/out/result
model=/mnt/azaion/$FOLDER/$NAME

ok() { echo "ok $1" >>"$out"; }
fail() { echo "FAIL $1: $2" >>"$out"; }
# check NAME WHY CMD...: one line for CMD's outcome.
check() { local name=$1 why=$2; shift 2; if "$@"; then ok "$name"; else fail "$name" "$why"; fi; }
# within SECONDS CMD...: CMD succeeds before SECONDS pass.
within() {
	local end=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.5
	done
}
mounted() { awk '$2 == "/mnt/azaion" && $3 == "fuse.azaion-loader" {f=1} END {exit !f}' /proc/self/mounts; }
unmounted() { ! mounted; }
model_ok() { [ "$(timeout 60 sha256sum <"$model" | cut -d' ' -f1)" = "$SHA" ]; }
mounted_ok() { mounted && model_ok; }
prop() { systemctl show -P "$2" "$1"; }
# Every call that waits is bounded: a unit stuck in a restart loop must fail
# its checks, not hang the boot test.
sctl() { timeout 30 systemctl "$@"; }
active() { [ "$(systemctl is-active "$1")" = active ]; }
no_daemon() {
	local p
	for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = azaion-loader ] && return 1; done
	return 0
}
# restarted PID N: the service runs again, with another main PID, after
# more than N restarts.
restarted() {
	active azaion-loader.service && [ "$(prop azaion-loader.service MainPID)" != "$1" ] &&
		[ "$(prop azaion-loader.service NRestarts)" -gt "$2" ]
}

svc=azaion-loader.service

# 1. The service, started at boot: Type=notify, secrets by LoadCredential=
# (loader.yaml names them relatively and they exist nowhere else the loader
# looks), the login at start, the mount seen from this other unit.
check service-active "$(systemctl status --no-pager $svc 2>&1 | tail -5)" \
	eval 'active $svc && [ "$(prop $svc Type)" = notify ] && [ "$(prop $svc NRestarts)" = 0 ]'
creds=/run/credentials/$svc
check service-credentials "$(ls $creds 2>&1); loader environment: $(tr '\0' '\n' </proc/$(prop $svc MainPID)/environ | grep CRED)" \
	eval '[ -s $creds/resource-key ] && [ -s $creds/password ] &&
		tr "\0" "\n" </proc/$(prop $svc MainPID)/environ | grep -qx "CREDENTIALS_DIRECTORY=$creds"'
check service-login-at-start "$(azaion-loader status --json --addr "$LISTEN" 2>&1)" \
	eval 'azaion-loader status --json --addr "$LISTEN" | grep -q "\"authenticated\":true"'
check service-host-mount-namespace "the loader's $(readlink /proc/$(prop $svc MainPID)/ns/mnt), init's $(readlink /proc/1/ns/mnt)" \
	eval '[ "$(readlink /proc/$(prop $svc MainPID)/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]'
check service-mount-visible "$(grep azaion /proc/self/mounts)" mounted
check service-model-sha256 "$(ls -la /mnt/azaion/$FOLDER 2>&1)" model_ok
version=$(azaion-loader --version | cut -d' ' -f2)
first=$(journalctl -u $svc -o cat --no-pager | grep -m1 '^{')
check service-version-logged "first line: $first" \
	eval '[ "$version" != unknown ] && echo "$first" | grep -qF "\"version\":\"$version\""'

# 2. systemctl stop unmounts; start mounts again.
sctl stop $svc
check service-stop-unmounts "still mounted after stop" within 10 eval 'unmounted && no_daemon'
sctl start $svc
check service-start-again "$(systemctl is-active $svc)" mounted_ok

# 3. kill -9: Restart= brings back a working mount (the stale one of the
# killed loader is detached by the next).
pid=$(prop $svc MainPID) n=$(prop $svc NRestarts)
[ "$pid" -gt 0 ] && kill -9 "$pid" # 0 would be our own process group
check service-kill9-restarts "NRestarts $(prop $svc NRestarts), $(systemctl is-active $svc)" within 30 restarted "$pid" "$n"
check service-kill9-mount-again "$(grep azaion /proc/self/mounts)" within 10 mounted_ok

# 4. A loader that stops answering misses its watchdog and is restarted.
pid=$(prop $svc MainPID) n=$(prop $svc NRestarts)
[ "$pid" -gt 0 ] && kill -STOP "$pid"
check service-watchdog-restarts "NRestarts $(prop $svc NRestarts), $(systemctl is-active $svc)" within 30 restarted "$pid" "$n"
check service-watchdog-logged "no watchdog timeout in the journal" \
	eval 'journalctl -u $svc --no-pager | grep -qi "watchdog timeout"'
check service-watchdog-mount-again "$(grep azaion /proc/self/mounts)" within 10 mounted_ok

sctl disable --now $svc
check service-disabled "still mounted" within 10 eval 'unmounted && no_daemon'

# The .mount unit and fstab run the loader through mount(8) and
# mount.fuse3, without systemd credentials: the secrets by absolute path.
sed -i 's|^resource_key_file: .*|resource_key_file: /etc/azaion/credentials/resource-key|; s|^password_file: .*|password_file: /etc/azaion/credentials/password|' /etc/azaion/loader.yaml

# 5. mnt-azaion.mount.
check mount-unit-start "$(systemctl status --no-pager mnt-azaion.mount 2>&1 | tail -5)" \
	eval 'sctl start mnt-azaion.mount && active mnt-azaion.mount'
check mount-unit-model-sha256 "$(grep azaion /proc/self/mounts)" mounted_ok
sctl stop mnt-azaion.mount
check mount-unit-stop-unmounts "still mounted or the loader still runs" within 10 eval 'unmounted && no_daemon'

# 6. An /etc/fstab line: mount -a, umount.
echo "/etc/azaion/loader.yaml /mnt/azaion fuse.azaion-loader ro,allow_other,_netdev,nofail 0 0" >>/etc/fstab
sctl daemon-reload
check fstab-mount-a "mount -a failed" timeout 60 mount -a
check fstab-model-sha256 "$(grep azaion /proc/self/mounts)" mounted_ok
check fstab-umount "umount failed" timeout 60 umount /mnt/azaion
check fstab-umount-unmounts "still mounted or the loader still runs" within 10 eval 'unmounted && no_daemon'

echo done >>"$out"
