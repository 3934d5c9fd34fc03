#!/usr/bin/env bash
# Real offline data: Debian's dataset-fashion-mnist (70,000 images in /usr/share/datasets/fashion-mnist).
# Installs it when missing and this is a root shell with apt-get; otherwise says what to do. Never fails.
if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
    && exit 0
fi
echo "note: Debian's dataset-fashion-mnist is not installed (sudo apt-get install dataset-fashion-mnist):" \
     "the demo uses the bundled digits and the Fashion-MNIST tests are skipped"
