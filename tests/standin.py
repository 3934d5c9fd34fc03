"""A stand-in model with the training protocol, for tests of the training loop and the `scae_train` command.

`python tests/standin.py ARGS` runs `scae_train` with the stand-in registered as model `toy` (through the public
`configs.register_model`), with three presets: `toy` (noisy autoencoder, per-example mean loss), `toy_slow` (the same,
20 ms per step, for signal tests) and `toy_nan` (its loss turns NaN at the 3rd step).
"""
import math, sys, time
import torch
import torch.nn as nn
import torch.distributed as dist
import torch_scae_nb.train as T
from torch_scae_nb import configs

TOY = dict(model='toy', image_shape=[1, 40, 40], n_hidden=8, noise=.1, sleep=0., nan_at=None,
           learning_rate=1e-2, batch_size=8, lr_decay_rate=None, lr_decay_steps=None)
TOY_SCHEMA = dict(n_hidden='int >= 1', noise='float >= 0', sleep='float >= 0', nan_at='int >= 1 or None')
PRESETS = dict(toy={}, toy_slow=dict(sleep=.02), toy_nan=dict(nan_at=3))


class ToyAutoencoder(nn.Module):
    "Noisy one-hidden-layer autoencoder; loss = per-example squared error summed over pixels, mean over the batch"
    def __init__(self, config):
        super().__init__()
        self.config, self.calls = dict(config), 0
        d = math.prod(config['image_shape'])
        self.enc, self.dec = nn.Linear(d, config['n_hidden']), nn.Linear(config['n_hidden'], d)

    def forward(self, images):                                   # (B, C, H, W) -> (B, C, H, W)
        x = images.flatten(1)
        h = torch.tanh(self.enc(x + self.config['noise'] * torch.randn_like(x)))
        return torch.sigmoid(self.dec(h)).view_as(images)

    def compute_loss(self, batch):
        self.calls += 1
        if self.config['sleep']: time.sleep(self.config['sleep'])
        images, labels = batch
        rec = self(images)
        mse = (rec - images).pow(2).flatten(1).sum(1).mean()
        if self.config['nan_at'] and self.calls >= self.config['nan_at']: mse = mse * float('nan')
        l2 = 1e-4 * sum(p.pow(2).sum() for p in self.parameters())
        return mse + l2, dict(mse=mse, l2=l2), rec


def flat_params(model): return torch.cat([p.detach().flatten() for p in model.parameters()])


def register(name, model, defaults, schema=None, presets=None, monkeypatch=None):
    "Register a test model and its presets; with pytest's `monkeypatch` the registration is undone after the test"
    if monkeypatch is not None:   # snapshot the two registries; `register_model` then writes into the copies
        monkeypatch.setattr(configs, 'MODELS', dict(configs.MODELS))
        monkeypatch.setattr(configs, 'PRESETS', dict(configs.PRESETS))
    configs.register_model(name, model, defaults, schema, presets)


def register_toy(monkeypatch=None):
    "Make `toy`, `toy_slow` and `toy_nan` presets that `scae_train --config` builds"
    register('toy', ToyAutoencoder, TOY, TOY_SCHEMA, PRESETS, monkeypatch)


def toy_dataset(n=32, shape=(1, 8, 8)):
    "Fixed random images with labels"
    g = torch.Generator().manual_seed(1)
    return torch.utils.data.TensorDataset(torch.rand(n, *shape, generator=g), torch.arange(n) % 10)


def ddp_worker(rank, world_size, folder, steps, global_batch):
    "One process of the DDP test (Gloo, file rendezvous): train the noise-free stand-in, resume, finish; rank 0 saves"
    # `steps // 2` steps, then a new model and trainer resume from the checkpoint (broadcast from rank 0) to `steps`
    from torch_scae_nb.data import make_loader
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{folder}/rendezvous', rank=rank, world_size=world_size)
    try:
        for target, resume in ((steps // 2, False), (steps, True)):
            torch.manual_seed(0)
            model = ToyAutoencoder(dict(TOY, image_shape=[1, 8, 8], noise=0.))
            loader = make_loader(toy_dataset(), batch_size=global_batch // world_size, shuffle=True, seed=0,
                                 distributed=True)
            trainer = T.Trainer(model, loader, f'{folder}/run', log_every=1, checkpoint_every=1000, progress=False)
            if resume: trainer.resume()
            trainer.fit(steps=target)
        if rank == 0: torch.save(flat_params(model), f'{folder}/ddp_params.pt')
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    register_toy()
    sys.exit(T.main())
