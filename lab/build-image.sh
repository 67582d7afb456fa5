#!/usr/bin/env bash
# Build the Debian 12 systemd base image used by the lab and by molecule, unless it exists.
# The tag carries a hash of this recipe, so the image is rebuilt only when the recipe changes.
# Usage: lab/build-image.sh            -> prints the image reference on stdout
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"

name="${LAB_IMAGE_NAME:-localhost/redis-lab-debian12}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=systemd,systemd-sysv,python3,dbus,iproute2,ca-certificates,sudo
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
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' - "$image" >&2
podman tag "$image" "$name:latest" >/dev/null
echo "$image"
# recipe-end
