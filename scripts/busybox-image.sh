#!/bin/sh
# Builds the image the examples and tests run in, dgrid/busybox:latest, from Debian's static
# busybox with `docker import`: no registry is needed (none may be reachable).
set -eu
tag=${1:-dgrid/busybox:latest}
if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
# The image has no libraries, so the binary must be static (Debian's busybox-static).
is_static() { [ -x "$1" ] && ldd "$1" 2>&1 | grep -q "not a dynamic executable"; }
busybox=$(command -v busybox 2>/dev/null || true)
if [ -z "$busybox" ] || ! is_static "$busybox"; then
    busybox=/bin/busybox
fi
if ! is_static "$busybox"; then
    echo "a static busybox is needed (apt-get install busybox-static)" >&2
    exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$tag" >/dev/null
echo "built $tag"
