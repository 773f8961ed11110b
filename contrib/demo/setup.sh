#!/bin/sh
# Creates a self-contained demo under DIR (default ./demo): some data, a
# pipe source, a local restic repository and an embedded metadb.
set -eu
dir=$(mkdir -p "${1:-demo}" && cd "${1:-demo}" && pwd)
mkdir -p "$dir/etc/sources" "$dir/data/users/alice" "$dir/data/users/bob"
echo "alice's mail" > "$dir/data/users/alice/inbox"
echo "bob's mail" > "$dir/data/users/bob/inbox"
[ -f "$dir/etc/restic.pw" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/etc/restic.pw"; }
chmod 600 "$dir/etc/restic.pw"
cat > "$dir/etc/agent.yml" <<YML
hostname: demo-host
repository:
  params:
    uri: $dir/repo
    password_file: $dir/etc/restic.pw
work_dir: $dir/work
YML
cat > "$dir/etc/sources/demo.yml" <<YML
- name: users
  handler: file
  params: {path: $dir/data/users}
  atoms: [{name: alice}, {name: bob}]
- name: sql
  handler: pipe
  params:
    backup_command: "printf 'CREATE TABLE t (x);\\\\n-- dump of %s\\\\n' \${atom.name}"
    restore_command: "cat"
  atoms: [{name: db1}, {name: db2}]
YML
echo "demo configuration in $dir/etc"
