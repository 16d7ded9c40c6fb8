#!/usr/bin/env bash
# Train the bundled model zoo (weights/) with the `zoo` preset, resumably: rerun after an interruption and every
# run continues from its last checkpoint. Then rebuild weights/MANIFEST.json.
#
#   VGG=../shared/weights/vgg16-imagenet-caffe-features.pth DATA=../shared/data RUNS=runs scripts/train_zoo.sh
#
# Ablation set: starry_night with each norm (identical settings, data, seed, steps; SN with its BN branch, the
# ablation setting). Style set: more styles with instance norm. On a GPU add e.g. `--batch-size 16 --image-size 256`.
set -euo pipefail
VGG=${VGG:-../shared/weights/vgg16-imagenet-caffe-features.pth}
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs/zoo}
THREADS=${THREADS:-}
mkdir -p "$RUNS" weights

train() {  # name, style, norm, extra options...
  local name=$1 style=$2 norm=$3; shift 3
  if [ -f "weights/$name.pth" ]; then return; fi
  local ckpt="$RUNS/$name.run/checkpoint.pth"
  if [ -f "$ckpt" ]; then
    styler train --resume "$ckpt" ${THREADS:+--threads $THREADS} --quiet
  else
    styler train -s "$DATA/style/$style.jpg" -d "$DATA/content/train" -o "$RUNS/$name.pth" --preset zoo \
      --norm "$norm" --vgg-weights "$VGG" ${THREADS:+--threads $THREADS} --quiet "$@"
  fi
  cp "$RUNS/$name.pth" "weights/$name.pth"
}

train starry_night_in starry_night in
train starry_night_bn starry_night bn
train starry_night_gn starry_night gn
train starry_night_ln starry_night ln
train starry_night_sn starry_night sn --sn-using-bn
train great_wave_in great_wave in
train the_scream_in the_scream in
train composition_vii_in composition_vii in

ablation=$(ls weights/starry_night_{in,bn,gn,ln,sn}.pth 2>/dev/null | xargs -n1 basename | sed 's/\.pth$//' | paste -sd, -)
python scripts/build_manifest.py --default starry_night_in --ablation "$ablation"
