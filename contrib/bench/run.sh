#!/bin/sh
# make bench: tabacco's overhead on top of raw restic, measured on the same
# data in the same repository, best of N runs. Prints absolute figures and
# the ratio tabacco/restic (1.00 = no overhead), and tabacco's own peak RSS
# while it streams a pipe source (its memory must not grow with the data).
set -eu
BIN=${BIN:-target/release/tabacco}
N=${N:-3}
SIZE_MB=${SIZE_MB:-512}
dir=$(mktemp -d /tmp/tabacco-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/etc/sources" "$dir/data/tree"
for i in $(seq 1 2000); do echo "file $i" > "$dir/data/tree/f$i"; done
head -c $((SIZE_MB * 1048576)) /dev/urandom > "$dir/data/blob"
cat > "$dir/etc/agent.yml" <<YML
hostname: bench
repository: {params: {uri: $dir/repo, password: bench}}
work_dir: $dir/work
YML
cat > "$dir/etc/sources/bench.yml" <<YML
- name: tree
  handler: file
  params: {path: $dir/data/tree}
- name: stream
  handler: pipe
  params: {backup_command: "cat $dir/data/blob"}
YML
export RESTIC_REPOSITORY="$dir/repo" RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$dir/work/cache"
restic init -q

# best WALL_SECONDS of N runs of "$@"
best() {
    b=""
    for _ in $(seq 1 "$N"); do
        s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}
report() { # name tabacco-seconds restic-seconds
    printf '%-44s tabacco %6.2f s   restic %6.2f s   ratio %.2f\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"
}

t=$(best "$BIN" --config "$dir/etc/agent.yml" run tree)
r=$(best restic backup -q --host bench "$dir/data/tree")
report "file source, 2000 small files (unchanged)" "$t" "$r"

t=$(best "$BIN" --config "$dir/etc/agent.yml" run stream)
r=$(best sh -c "cat '$dir/data/blob' | restic backup -q --stdin --stdin-filename raw")
report "pipe source, $SIZE_MB MiB (deduplicated)" "$t" "$r"

"$BIN" --config "$dir/etc/agent.yml" run stream & pid=$!
hwm=0
while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$h" ] && [ "$h" -gt "$hwm" ]; then hwm=$h; fi
    sleep 0.1
done
wait "$pid"
printf 'tabacco peak RSS while streaming %d MiB: %d KiB\n' "$SIZE_MB" "$hwm"
