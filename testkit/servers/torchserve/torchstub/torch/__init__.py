"""A stand-in for torch, enough for TorchServe's Python worker without the 5 GB wheel.

The worker imports torch only to check `isinstance(value, torch.Tensor)` and, for
tensor answers, to call `torch.save`; the test handlers never return tensors.
"""


class Tensor:  # noqa: D101 - nothing is ever an instance
    pass


def save(obj, f):  # noqa: D103
    raise RuntimeError("the torch stub cannot serialize tensors; return JSON-able values")
