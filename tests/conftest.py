"Fixtures every test file shares"
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    "Tiny models run fastest on one thread (and the DDP test's processes must not fight over two cores)"
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
