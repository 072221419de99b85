"""The three served networks as PyTorch modules.

Each module's ``forward`` takes the row-format input of its contract (``stack/builtins.py``)
and returns probabilities; ``logits`` returns the pre-activation output, which the
parity tests compare as well because near-uniform probabilities hide errors.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SimpleNN(nn.Module):
    """The seed article's SimpleNN: Linear(10,5)-ReLU-Linear(5,1)-Sigmoid, input [N, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 5)
        self.fc2 = nn.Linear(5, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class DigitsCNN(nn.Module):
    """Small CNN for 8x8 digits, input [N, 8, 8] with pixel values 0-16, 10 softmax outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = (x / 16.0).unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)  # NCHW order: the Keras side permutes fc1's rows to match
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN pairs and a (possibly projected) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.downsample(x))


#: (output channels, stride of the first block) per stage; two blocks each = ResNet-18.
RESNET_STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))


class ResNet18(nn.Module):
    """ResNet-18-shaped classifier; input [N, 224, 224, 3] NHWC in [0, 1], 1000 softmax outputs."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers: list[nn.Module] = []
        in_ch = 64
        for out_ch, stride in RESNET_STAGES:
            layers.append(nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1)))
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # the wire format is NHWC, as TF Serving takes it
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=1)


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": SimpleNN, "digits": DigitsCNN, "resnet": ResNet18}


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) module for model ``name``."""
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ARCHITECTURES)}") from None
