#!/usr/bin/env bash
# Build a Debian systemd base image for the lab and for molecule, unless it exists.
# The tag carries a hash of this recipe, so the image is rebuilt only when the recipe changes.
# Usage: lab/build-image.sh [12|13]    -> prints the image reference on stdout
#   12 (bookworm, the default) -> localhost/redis-lab-debian12, 13 (trixie) -> .../redis-lab-debian13
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

release="${1:-12}"
case "$release" in
  12) suite=bookworm ;;
  13) suite=trixie ;;
  *) echo "lab/build-image.sh: unknown Debian release '$release' (12 or 13)" >&2; exit 2 ;;
esac
name="${LAB_IMAGE_NAME:-localhost/redis-lab-debian$release}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3-apt, as hosts with unattended-upgrades have it: Ansible's apt module installs it when it
# is missing and restarts itself, which Mitogen's strategy cannot follow (docs/speed.md).
packages=systemd,systemd-sysv,python3,python3-apt,dbus,iproute2,ca-certificates,sudo,openssh-server
recipe_hash=$(printf '%s\n' "$suite" "$packages" "$(sed -n '/^# recipe-end/q;p' "$0")" \
  | sha256sum | cut -c1-12)
image="$name:$recipe_hash"

if podman image exists "$image"; then
  podman tag "$image" "$name:latest" >/dev/null
  echo "$image"
  exit 0
fi

rootfs=$(mktemp -d /var/tmp/lab-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "Building $image with debootstrap (about a minute)..." >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >&2
# Containers have no console getty to start and no need to wait for udev.
chroot "$rootfs" systemctl mask getty@tty1.service systemd-udevd.service \
  systemd-udev-trigger.service console-getty.service >/dev/null 2>&1 || true
# Molecule's Ansible logs in over SSH as `ansible`, with a key only (molecule/shared/prepare.yml
# puts the run's in ~ansible/.ssh/authorized_keys), and becomes root with sudo, as on the hosts
# operators run. The host keys are made once per image: test hosts only.
chroot "$rootfs" useradd --create-home --shell /bin/bash ansible
printf 'ansible ALL=(ALL:ALL) NOPASSWD: ALL\n' >"$rootfs/etc/sudoers.d/ansible"
chmod 0440 "$rootfs/etc/sudoers.d/ansible"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n' \
  >"$rootfs/etc/ssh/sshd_config.d/lab.conf"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# Package lists never read, as apt sees them: the emptied folder's time would otherwise pass for a
# recent `apt-get update`, and a host started within the hour would find no packages.
touch --date=@0 "$rootfs"/var/lib/apt/lists
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image" >&2
podman tag "$image" "$name:latest" >/dev/null
echo "$image"
# recipe-end
