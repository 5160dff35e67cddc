#!/bin/sh
# Fails when a C file differs from what .clang-format makes of it.
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files 'include/*.h' 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c'); do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: clang-format -i $f)"
        bad=1
    fi
done
exit $bad
