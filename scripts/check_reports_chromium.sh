#!/usr/bin/env bash
# Load every HTML report under a reports folder in headless Chromium and fail on any console
# message (errors, uncaught exceptions; our reports have no scripts, so any is suspicious) or
# an empty page. Optionally writes a screenshot per report for a visual check.
#
#   scripts/check_reports_chromium.sh [REPORTS_DIR] [SCREENSHOT_DIR]
#
# REPORTS_DIR defaults to $LABWH_HOME/reports (or ./data/reports). GX Data Docs pages
# (reports/quality/data_docs/) are checked too: they run GX's scripts from the site's local
# copies, and a copy that is missing or a request to another host is a console error
# ("Failed to load resource"). Needs Debian's chromium (apt-get install -y chromium); exits 0 with a notice
# when it is absent. Network is disabled for the page (no request may leave the machine).
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
REPORTS="${1:-${LABWH_HOME:-./data}/reports}"
SHOTS="${2:-}"

if [[ ! -x "$CHROMIUM" ]]; then
    echo "chromium not found at $CHROMIUM: skipped" >&2
    exit 0
fi
if [[ ! -d "$REPORTS" ]]; then
    echo "no reports folder: $REPORTS" >&2
    exit 2
fi

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --user-data-dir="$profile" --enable-logging=stderr --v=0
    --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars
)

status=0
checked=0
while IFS= read -r -d '' page; do
    url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
    log="$profile/log.txt"
    dom="$(timeout 60 "$CHROMIUM" "${flags[@]}" --dump-dom "$url" 2>"$log" || true)"
    checked=$((checked + 1))
    if grep -E "CONSOLE|Uncaught" "$log" >/dev/null; then
        echo "FAIL console output: $page" >&2
        grep -E "CONSOLE|Uncaught" "$log" >&2
        status=1
    elif [[ "$dom" != *"</body>"* ]]; then
        echo "FAIL empty or broken page: $page" >&2
        status=1
    else
        echo "ok   $page"
    fi
    if [[ -n "$SHOTS" ]]; then
        mkdir -p "$SHOTS"
        shot="$SHOTS/$(echo "${page#"$REPORTS"/}" | tr '/' '_' | sed 's/\.html$//').png"
        timeout 60 "$CHROMIUM" "${flags[@]}" --window-size=1280,2400 \
            --screenshot="$shot" "$url" 2>/dev/null >/dev/null || true
    fi
done < <(find "$REPORTS" -name '*.html' -print0 | sort -z)

echo "$checked report(s) checked"
exit "$status"
