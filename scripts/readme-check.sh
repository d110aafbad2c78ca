#!/usr/bin/env bash
# Runs the README's shell blocks as a new user would, in order, in one shell: every ```sh block is
# run; ```text blocks are examples that need GitHub or placeholders and are not. Of the opening
# block, only its first line runs (install and the demo): its second line, the tests, is what CI
# runs anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
    echo 'set -euxo pipefail'
    awk '
        /^```sh$/ { inblock = 1; blocks++; line = 0; next }
        /^```/    { inblock = 0; next }
        inblock   { line++; if (blocks == 1 && line > 1) next; print }
    ' README.md
} > "$script"
echo "running $(grep -c . "$script") README lines"
bash "$script"
echo "README blocks: all ran"
