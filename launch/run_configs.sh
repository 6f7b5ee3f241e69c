#!/usr/bin/env bash
# Run the main job once per config entry, then collect every report into one folder.
#
# Usage: launch/run_configs.sh ENTRY [ENTRY ...]
#        launch/run_configs.sh --file=CONFIGS.txt
#
# An ENTRY is a config string, optionally followed by flags for that run, e.g.
# "configs/transfer.py:paper --config.seeds=5". In a file, each line is an entry;
# blank lines and lines starting with # are skipped. Flags inside an entry are split
# on spaces, so a value must not contain spaces.
#
# Environment:
#   RUNS         folder of the run workdirs (default: runs). Entry N goes to
#                RUNS/NN-NAME, so a first entry configs/transfer.py:paper goes
#                to RUNS/01-transfer_paper.
#   PYTHON       the Python interpreter (default: python)
#   COMMON_ARGS  flags added to every run, e.g. the data paths:
#                "--config.source.path=WUSTL.csv --config.target.path=ACI_FOLDER"
#
# Relative paths (RUNS, --file, data paths) are read from the folder the script runs
# in. A relative config path that does not exist there is read from the repository
# root, so configs/transfer.py works from any folder.
#
# A run that fails is logged and the next one starts; the script exits 1 at the end
# when any run failed. Rerunning the same list resumes each workdir from its
# checkpoints, because the run names depend only on the list.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
# `python -m ctal_jax.main` finds the package in the checkout even when not installed.
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
RUNS="${RUNS:-runs}"
PYTHON="${PYTHON:-python}"
COMMON_ARGS="${COMMON_ARGS:-}"

entries=()
for argument in "$@"; do
  if [[ "$argument" == --file=* ]]; then
    file="${argument#--file=}"
    if [[ ! -f "$file" ]]; then
      echo "error: config list $file not found." >&2
      exit 2
    fi
    while IFS= read -r line || [[ -n "$line" ]]; do
      line="${line%%#*}"
      if [[ -n "${line// /}" ]]; then
        entries+=("$line")
      fi
    done < "$file"
  else
    entries+=("$argument")
  fi
done

if [[ ${#entries[@]} -eq 0 ]]; then
  echo "error: no config given; usage: $0 CONFIG [CONFIG ...] or $0 --file=CONFIGS.txt" >&2
  exit 2
fi

mkdir -p "$RUNS"
failed=()
index=0
for entry in "${entries[@]}"; do
  index=$((index + 1))
  read -r -a words <<< "$entry"
  config="${words[0]}"
  if [[ "$config" != /* && ! -f "${config%%:*}" && -f "$repo/${config%%:*}" ]]; then
    config="$repo/$config"
  fi
  overrides=("${words[@]:1}")
  read -r -a common <<< "$COMMON_ARGS"

  # configs/transfer.py:paper -> 01-transfer_paper
  base="$(basename "${config%%:*}" .py)"
  variant="${config#*:}"
  [[ "$variant" == "$config" ]] && variant=""
  name="$(printf '%02d-%s%s' "$index" "$base" "${variant:+_$variant}" | tr -c 'A-Za-z0-9_.\n-' '_')"
  workdir="$RUNS/$name"

  echo "[$(date '+%F %T')] start $name: $config ${overrides[*]:-} ${common[*]:-}"
  if "$PYTHON" -m ctal_jax.main --config="$config" --workdir="$workdir" \
      ${overrides[@]+"${overrides[@]}"} ${common[@]+"${common[@]}"} 2>&1 | tee "$RUNS/$name.log"; then
    echo "[$(date '+%F %T')] done $name"
  else
    echo "[$(date '+%F %T')] FAILED $name; see $RUNS/$name.log" >&2
    failed+=("$name")
  fi
done

"$PYTHON" "$repo/launch/collect.py" "$RUNS" --into="$RUNS/collected"

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "error: ${#failed[@]} of ${#entries[@]} runs failed: ${failed[*]}" >&2
  exit 1
fi
