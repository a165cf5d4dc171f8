#!/usr/bin/env bash
# Render DIR/report.html to DIR/report.png with headless Chromium (Debian: apt-get install
# chromium), so a person can look at the report without a browser at hand.
#   bash scripts/screenshot_report.sh DIR [WIDTHxHEIGHT]   (default 1400x3000 CSS pixels)
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DIR [WIDTHxHEIGHT]" >&2
  exit 2
fi
dir=$(cd "$1" && pwd)
size=${2:-1400x3000}
if [ ! -f "$dir/report.html" ]; then
  echo "$0: no report.html in $dir (run pytest with --report-dir $1 first)" >&2
  exit 1
fi
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "$0: no Chromium found; install it with 'apt-get install chromium'" >&2
  exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --window-size="${size/x/,}" --screenshot="$dir/report.png" "file://$dir/report.html" \
  >/dev/null 2>&1
test -s "$dir/report.png"
echo "$dir/report.png"
