# Shared by the training recipes (scripts/cluttered.sh, scripts/megapixel.sh): a stage that
# resumes after a kill, and on a fresh checkout. Source it after setting RUNS and ONLY=("$@")
# (the stages to run; empty: all).
# - A finished stage (its checkpoint records a test accuracy, or "finished") is skipped; an
#   unfinished one continues with --resume; a stage that another invocation is training is
#   skipped (RUNS/NAME.lock, taken over when its process is gone).
# - Each finished stage's checkpoint is copied into DEST (default checkpoints/; the
#   intermediate stages: checkpoints/stages/, which the app does not list), its metrics into
#   assets/logs/NAME.metrics.jsonl, its JSON (command, settings, history) into
#   assets/logs/NAME.json, and its flags into assets/logs/NAME.stage. Commit them:
#   on a fresh checkout (RUNS empty), a stage whose committed flags are the same is done, and
#   its committed checkpoint is copied back into RUNS for the stages that --init from it.
# CMD: the trainer (default python -m saccade.train). EXTRA: flags added to every stage.
# NO_COPY=1: leave the stage in RUNS only (nothing copied into DEST or assets/logs): for runs
# whose flags are not the recipe's (scripts/gpu_train.sh, its smoke test), which would
# otherwise replace the committed checkpoint and its marker.
# DRY_RUN=1: print each stage's name and flags, one line each (shell-quoted), and train
# nothing (tests/test_train.py reads them).

done_stage() {  # a stage is done once its checkpoint records a test accuracy, or "finished"
  [ -f "$1.json" ] && python -c "import json,sys; m = json.load(open('$1.json')); sys.exit(0 if m.get('test_accuracy') is not None or m.get('finished') else 1)"
}

stage() {  # stage NAME ARGS...: train RUNS/NAME (resuming it if a state is there), copy it
  local name=$1 out="$RUNS/$1"
  shift
  if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $name "* ]]; then return; fi
  if [ -n "${DRY_RUN:-}" ]; then printf '%q ' "$name" "$@"; echo; return; fi
  local dest=${DEST:-checkpoints} marker="assets/logs/$name.stage"
  if ! done_stage "$out" && [ -f "$marker" ] && [ "$(cat "$marker")" = "$*" ] \
      && done_stage "$dest/$name"; then  # a fresh checkout: the committed stage
    cp "$dest/$name.safetensors" "$dest/$name.json" "$RUNS/"
  fi
  if done_stage "$out"; then echo "$name: done"; return; fi
  if ! mkdir "$out.lock" 2>/dev/null; then  # a lock left by a killed run is taken over
    if kill -0 "$(cat "$out.lock/pid" 2>/dev/null)" 2>/dev/null; then
      echo "$name: running elsewhere"; return
    fi
  fi
  echo $$ > "$out.lock/pid"
  local resume=()
  if [ -f "$out.state.json" ]; then resume=(--resume); fi
  echo "$name: training ($*)"
  # shellcheck disable=SC2086
  ${CMD:-python -m saccade.train} "$@" ${EXTRA:-} --out "$out" "${resume[@]}" > "$RUNS/$name.log" 2>&1
  rm -r "$out.lock"
  if [ -n "${NO_COPY:-}" ]; then return; fi
  mkdir -p "$dest" assets/logs
  cp "$out".safetensors "$out".json "$dest/"
  cp "$out".metrics.jsonl "assets/logs/$name.metrics.jsonl"
  cp "$out".json "assets/logs/$name.json"  # its command, settings and history, beside the log
  echo "$*" > "$marker"
}
