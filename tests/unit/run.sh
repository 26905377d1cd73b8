#!/usr/bin/env bash
# Runs each unit-test binary given, then prints one total line.
set -u
pass=0; fail=0; status=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    [ -n "$line" ] || { f=1; p=0; echo "$t: crashed or printed no summary (exit $rc)"; }
    pass=$((pass + p)); fail=$((fail + f))
    [ "$rc" -eq 0 ] || status=1
done
echo "unit: $pass passed, $fail failed"
exit $status
