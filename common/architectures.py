"""The VGG layouts by name, as plain numbers (no torch): what ``common.models`` builds, and the
names that flags such as ``--teacher`` and ``--model`` choose from without importing a model."""

# Conv output channels per stage, full width (Simonyan & Zisserman 2015, configurations A/B/D/E).
VGG_STAGES: dict[str, list[list[int]]] = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}
