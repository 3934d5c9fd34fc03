"""`scae_train` against a diverging run, bad data found while training, an unwritable run folder, a foreign or
hostile checkpoint (issue 13, training part): each ends in one line and a run folder that is still good.

Most tests use the stand-in presets of `standin.py` through the fixtures of `test_train.py`; the diverging run uses
the real `tiny` SCAE, as in the issue.
"""
import json, math, os, re, shutil
from pathlib import Path

import pytest
import torch

import standin
import torch_scae_nb.data as D
import torch_scae_nb.train as T
from test_train import ckpt_of, main, steps_logged, toy   # fixtures and helpers


def all_finite(folder):
    "{checkpoint name: [non-finite tensors]} for every checkpoint file in `folder`, read without our checks"
    return {p.name: T.nonfinite_tensors(torch.load(p, weights_only=True)) for p in sorted(Path(folder).glob('*.pt'))}


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def snapshot(folder):
    "Every file in `folder` with its bytes and modification time"
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(folder).iterdir())}


# --- case 1: a diverging run never writes NaN, and says so -------------------------------------------------------

TINY = ['--config', 'tiny', '--dataset', 'digits', '--batch_size', 16, '--checkpoint_every', 1, '--log_every', 1,
        '--diagnose_every', 0, '--no_progress']

def after_info(err, n=1):
    "stderr without its first `n` lines (the line describing the run; on --resume also the 'resuming from' line)"
    lines = err.splitlines(keepends=True)
    assert lines[0].startswith('scae_train: ') and ' -> ' in lines[0] and (n == 1 or lines[1].startswith('resuming from'))
    return ''.join(lines[n:])


def check_stop_message(err, run):
    "The message of a stopped run names a checkpoint that exists, loads, is finite and is of the step it says"
    line = one_line(err)
    assert line.startswith('scae_train: non-finite gradient at step ') and 'stopped without updating' in line, line
    assert 'a smaller --learning_rate than 3, or --grad_clip' in line, line
    m = re.search(r'the last good checkpoint is (\S+) \(step (\d+)\)', line)
    assert m, line
    path, step = Path(m[1]), int(m[2])
    assert path.is_file() and path.parent == run
    ckpt = T.read_checkpoint(path)                                    # raises on non-finite tensors
    assert ckpt['step'] == step and T.nonfinite_tensors(ckpt) == []
    return path, step


def test_absurd_learning_rate_leaves_only_finite_checkpoints(capsys, tmp_path):
    "lr 3 (the issue's case): the first update with a non-finite gradient is refused; --resume does not re-poison"
    run = tmp_path/'run'
    code, out, err = main(capsys, *TINY, '--learning_rate', 3, '--steps', 8, '--out', run)
    assert code == 1
    path, step = check_stop_message(after_info(err), run)
    assert step >= 1 and all(bad == [] for bad in all_finite(run).values()), all_finite(run)

    code, out, err = main(capsys, *TINY, '--learning_rate', 3, '--steps', 8, '--out', run, '--resume')
    assert code == 1                                                  # the same run diverges at the same step again
    assert f'resuming from {path} at step {step}' in err
    assert check_stop_message(after_info(err, 2), run) == (path, step)
    assert all(bad == [] for bad in all_finite(run).values()), all_finite(run)


class Bowl(torch.nn.Module):
    "Loss 100 (p - 1)^2 + 1 of one parameter, whatever the images: RMSProp with a huge rate swings it ever wider"
    def __init__(self, config):
        super().__init__()
        self.config, self.p = dict(config), torch.nn.Parameter(torch.zeros(()))
    def compute_loss(self, batch):
        images, labels = batch
        loss = 100 * (self.p - 1) ** 2 + 1
        return loss, dict(bowl=loss), images


@pytest.fixture
def bowl(toy, monkeypatch):
    "A `bowl` preset (the `toy` ones too)"
    cfg = dict(model='bowl', image_shape=[1, 40, 40], learning_rate=1e-2, batch_size=8)
    standin.register('bowl', Bowl, cfg, presets=dict(bowl={}), monkeypatch=monkeypatch)


def test_divergence_that_stays_finite_is_reported_once(bowl, capsys, tmp_path):
    "A rate far too large: the loss grows by orders of magnitude but stays finite; one warning, the run goes on"
    run = tmp_path/'run'
    args = ['--config', 'bowl', '--log_every', 5, '--checkpoint_every', 20, '--no_progress', '--out', run]
    code, out, err = main(capsys, *args, '--learning_rate', 300, '--steps', 40)
    assert code == 0, err
    losses = [r['loss'] for r in T.read_metrics(run/T.METRICS)]
    assert max(losses) > 1e5 * 101 and all(map(math.isfinite, losses)), losses          # from 101 at p = 0
    warned = [l for l in err.splitlines() if 'diverging' in l]
    assert len(warned) == 1, err
    assert warned[0].startswith('scae_train: warning: the loss is diverging: its running value rose from ')
    assert warned[0].endswith('with learning rate 300; try a smaller --learning_rate (e.g. 30) or --grad_clip')

    code, out, err = main(capsys, *args, '--steps', 60, '--resume')   # warned once per run, also across a resume
    assert code == 0 and 'diverging' not in err, err

    code, out, err = main(capsys, *args[:-1], tmp_path/'calm', '--learning_rate', .01, '--steps', 40)
    assert code == 0 and 'diverging' not in err, err                  # a rate that works: no word
    code, out, err = main(capsys, *TINY, '--log_every', 2, '--checkpoint_every', 100, '--steps', 30,
                          '--out', tmp_path/'tiny')                   # nor on the real model's normal run
    assert code == 0 and 'warning' not in err, err


def test_poisoned_checkpoint_of_an_older_version_is_skipped(toy, capsys, tmp_path):
    "A NaN checkpoint.pt (as 14243e7 wrote them) is not resumed: the finite previous one is, and stays at hand"
    run = tmp_path/'run'
    common = ['--config', 'toy', '--batch_size', 8, '--checkpoint_every', 2, '--log_every', 1, '--no_progress']
    assert main(capsys, *common, '--steps', 4, '--out', run)[0] == 0
    ckpt = torch.load(run/T.CHECKPOINT, weights_only=True)
    for v in ckpt['model'].values(): v.fill_(float('nan'))
    torch.save(ckpt, run/T.CHECKPOINT)
    code, out, err = main(capsys, *common, '--steps', 4, '--out', run, '--resume')
    assert code == 0, err
    assert f'checkpoint {run/T.CHECKPOINT} (step 4) holds NaN or infinite values in' in err
    assert f'using the previous checkpoint {run/T.PREVIOUS_CHECKPOINT} (step 2)' in err
    assert (ckpt_of(run)['step'], ckpt_of(run, T.PREVIOUS_CHECKPOINT)['step']) == (4, 2)   # the good one is kept
    assert all(bad == [] for bad in all_finite(run).values())
    assert (run/'checkpoint.pt.unusable').is_file() and f'set aside as {run}/checkpoint.pt.unusable' in err


def test_nan_weights_are_never_saved(tmp_path):
    "The last guard: `save` refuses non-finite weights and the previous checkpoint stays the good one"
    from standin import TOY, ToyAutoencoder, toy_dataset
    loader = torch.utils.data.DataLoader(toy_dataset(), batch_size=8)
    trainer = T.Trainer(ToyAutoencoder(dict(TOY, image_shape=[1, 8, 8])), loader, tmp_path, progress=False,
                        verbose=False, checkpoint_every=1)
    trainer.fit(steps=2)
    with torch.no_grad(): trainer.model.dec.bias[3] = float('nan')
    with pytest.raises(T.NonFiniteLoss, match=r'non-finite weights after step 2 \(1 tensor\(s\), e.g. model.dec.bias\)'):
        trainer.save()
    assert ckpt_of(tmp_path)['step'] == 2 and trainer.last_checkpoint == (tmp_path/T.CHECKPOINT, 2)
    assert all(bad == [] for bad in all_finite(tmp_path).values())


class Steep(torch.nn.Module):
    "Stand-in whose loss gains sqrt(0) (value 0, slope infinite) from its 3rd call on: a finite loss, an infinite gradient"
    def __init__(self):
        super().__init__()
        self.config, self.calls, self.lin = dict(learning_rate=1e-2), 0, torch.nn.Linear(64, 1)
    def compute_loss(self, batch):
        images, labels = batch
        self.calls += 1
        loss = self.lin(images.flatten(1)).pow(2).mean()
        if self.calls >= 3: loss = loss + torch.sqrt(self.lin.bias - self.lin.bias.detach()).sum()
        return loss, dict(fit=loss), images


def ddp_steep_worker(rank, world_size, folder):
    "One of two Gloo processes: train `Steep` to step 6; record how (and at which step) it stopped"
    import torch.distributed as dist
    from standin import toy_dataset
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{folder}/rendezvous', rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        loader = D.make_loader(toy_dataset(), batch_size=4, shuffle=True, seed=0, distributed=True)
        trainer = T.Trainer(Steep(), loader, f'{folder}/run', checkpoint_every=1, log_every=1, progress=False,
                            verbose=False)
        try: trainer.fit(steps=6); outcome = 'done'
        except T.NonFiniteLoss as e: outcome = str(e)
        (Path(folder)/f'rank{rank}.json').write_text(json.dumps(dict(step=trainer.step, outcome=outcome)))
    finally:
        dist.destroy_process_group()


def test_ddp_processes_refuse_the_same_update(tmp_path):
    "Under DDP every process stops at the same step (no hang), and the checkpoint rank 0 wrote is finite"
    import torch.multiprocessing as mp
    mp.spawn(ddp_steep_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path/f'rank{r}.json').read_text()) for r in range(2)]
    assert [r['step'] for r in results] == [2, 2], results
    assert all(r['outcome'].startswith('non-finite gradient at step 3 (loss ') for r in results), results
    assert f'the last good checkpoint is {tmp_path/"run"/T.CHECKPOINT} (step 2)' in results[0]['outcome']
    assert ckpt_of(tmp_path/'run')['step'] == 2 and all(bad == [] for bad in all_finite(tmp_path/'run').values())


# --- case 4: an unwritable --out, and a bad file found while training ---------------------------------------------

def test_out_inside_a_file_is_one_line(toy, capsys, tmp_path):
    (tmp_path/'file').write_text('x')
    code, out, err = main(capsys, '--config', 'toy', '--steps', 2, '--out', tmp_path/'file'/'run')
    assert code == 2
    assert one_line(err) == f'scae_train: error: --out {tmp_path}/file/run: {tmp_path}/file is not a folder'


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0, reason='root writes into read-only folders anyway')
def test_read_only_out_is_one_line(toy, capsys, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o555)
    try:
        code, out, err = main(capsys, '--config', 'toy', '--steps', 2, '--out', ro/'run')
        assert code == 2 and one_line(err) == (f'scae_train: error: --out {ro}/run cannot be written: {ro} is read-only '
                                               f'for this user; choose another --out, or make {ro} writable')
        assert list(ro.iterdir()) == []
    finally: ro.chmod(0o755)


def test_uncreatable_out_is_one_line(toy, capsys):
    "Where even root cannot create a folder (sysfs), the failure to create it is one line, before training starts"
    out = Path('/sys/scae_train_test_run')
    try: out.mkdir()
    except OSError: pass
    else:
        out.rmdir(); pytest.skip('this system lets us create folders in /sys')
    code, stdout, err = main(capsys, '--config', 'toy', '--steps', 2, '--out', out)
    assert code == 2
    line = one_line(after_info(err))
    assert line.startswith(f'scae_train: error: --out {out} cannot be written (') and line.endswith('choose another --out')


class Fragile(torch.utils.data.Dataset):
    "32 fixed 40x40 images with their index as label; reading example `bad` raises what an unreadable image file does"
    bad, split, image_shape = None, 'train', (1, 40, 40)
    def __init__(self): self.images = torch.rand(32, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    def __len__(self): return len(self.images)
    def __getitem__(self, i):
        if i == Fragile.bad: raise D.DataError(f'cannot read image /data/cats/{i:03d}.png (truncated file): fix it or remove it')
        return self.images[i], i


@pytest.fixture
def fragile(toy, monkeypatch):
    "`--dataset digits` builds a `Fragile` data set; its example read by the 3rd batch of the 1st epoch is bad"
    monkeypatch.setattr(D, 'make_dataset', lambda *a, **k: Fragile())
    Fragile.bad = None
    first_epoch = [int(i) for _, labels in D.make_loader(Fragile(), batch_size=8, shuffle=True, seed=0) for i in labels]
    Fragile.bad = first_epoch[2 * 8 + 5]
    yield
    Fragile.bad = None


@pytest.mark.parametrize('workers', [0, 1])
def test_bad_file_found_while_training(fragile, capsys, tmp_path, workers):
    "A DataError raised by the data set (here or in a worker) at step 3: one line, state of step 2 kept, then --resume"
    run = tmp_path/'run'
    args = ['--config', 'toy', '--dataset', 'digits', '--batch_size', 8, '--steps', 6, '--checkpoint_every', 1,
            '--log_every', 1, '--num_workers', workers, '--out', run, '--no_progress']
    code, out, err = main(capsys, *args)
    assert code == 2, err
    bad = Fragile.bad
    assert one_line(after_info(err)) == (
        f'scae_train: error: cannot read image /data/cats/{bad:03d}.png (truncated file): fix it or remove it; training '
        f'stopped at step 2, the checkpoint of step 2 ({run/T.CHECKPOINT}) is kept; then continue with --resume')
    assert ckpt_of(run)['step'] == 2 and steps_logged(run) == [1, 2]
    assert sorted(p.name for p in run.iterdir()) == sorted([T.CHECKPOINT, T.PREVIOUS_CHECKPOINT, T.METRICS,
                                                            T.LOSS_FIGURE, T.RUN_CONFIG])   # no temporary files
    Fragile.bad = None                                                 # the file is fixed
    code, out, err = main(capsys, *args, '--resume')
    assert code == 0, err
    assert ckpt_of(run)['step'] == 6 and steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_bad_file_before_the_first_checkpoint(fragile, capsys, tmp_path):
    run = tmp_path/'run'
    code, out, err = main(capsys, '--config', 'toy', '--batch_size', 8, '--steps', 6, '--checkpoint_every', 5,
                          '--out', run, '--no_progress')
    assert code == 2
    assert one_line(after_info(err)).endswith('training stopped at step 2, no checkpoint was written yet; then '
                                                     'run the same command again')
    Fragile.bad = None
    assert main(capsys, '--config', 'toy', '--batch_size', 8, '--steps', 6, '--checkpoint_every', 5, '--out', run,
                '--no_progress')[0] == 0


# --- case 5: a checkpoint that belongs to another run --------------------------------------------------------------

COMMON = ['--batch_size', 8, '--checkpoint_every', 2, '--log_every', 1, '--no_progress']

@pytest.mark.parametrize('other,why', [(['--config', 'toy_slow'], 'its config has sleep=0.02, '),
                                       (['--config', 'toy', '--seed', 7], 'it was trained with seed=7, ')])
def test_foreign_checkpoint_is_refused(toy, capsys, tmp_path, other, why):
    mine, theirs = tmp_path/'mine', tmp_path/'theirs'
    assert main(capsys, '--config', 'toy', *COMMON, '--steps', 6, '--out', mine)[0] == 0
    assert main(capsys, *other, *COMMON, '--steps', 2, '--out', theirs)[0] == 0
    shutil.copy(theirs/T.CHECKPOINT, mine/T.CHECKPOINT)                # someone copies the wrong file in
    before = snapshot(mine)
    code, out, err = main(capsys, *COMMON, '--steps', 8, '--out', mine, '--resume')
    assert code == 2
    line = one_line(err)
    assert line.startswith(f'scae_train: error: {mine/T.CHECKPOINT} is not the checkpoint of the run in {mine}: {why}'), line
    assert str(mine/T.RUN_CONFIG) in line and line.endswith('move it to a folder of its own and resume it there, or '
                                                            'remove it to resume this run from its own checkpoint')
    assert snapshot(mine) == before                                    # config.json, checkpoint_prev.pt, metrics kept

    (mine/T.CHECKPOINT).unlink()             # the advice works: back to this run's own (metrics up to step 6 are fine)
    code, out, err = main(capsys, *COMMON, '--steps', 8, '--out', mine, '--resume')
    assert code == 0 and f'using the previous checkpoint {mine/T.PREVIOUS_CHECKPOINT} (step 4)' in err, err
    assert steps_logged(mine) == list(range(1, 9)) and ckpt_of(mine)['step'] == 8


# --- case 6: a hostile checkpoint ------------------------------------------------------------------------------------

class Sneaky:
    "A pickle that runs a command when loaded unsafely"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def test_hostile_checkpoint_is_named_as_such(toy, capsys, tmp_path):
    run, marker = tmp_path/'run', tmp_path/'was_run'
    assert main(capsys, '--config', 'toy', *COMMON, '--steps', 4, '--out', run)[0] == 0
    state = torch.load(run/T.CHECKPOINT, weights_only=True)
    torch.save(dict(state, model=Sneaky(marker)), run/T.CHECKPOINT)
    code, out, err = main(capsys, *COMMON, '--steps', 4, '--out', run, '--resume')   # falls back, says why
    assert code == 0 and not marker.exists(), err
    [warning] = [l for l in err.splitlines() if l.startswith('scae_train: warning: ')]
    assert warning.startswith(f'scae_train: warning: cannot read checkpoint {run/T.CHECKPOINT} (it holds objects that '
                              'are not plain tensors ') and 'weights_only' not in warning and 'corrupted' not in warning
    assert ckpt_of(run, T.PREVIOUS_CHECKPOINT)['step'] == 2                    # the hostile file did not take its place

    (run/T.PREVIOUS_CHECKPOINT).unlink()
    torch.save(dict(state, model=Sneaky(marker)), run/T.CHECKPOINT)
    code, out, err = main(capsys, *COMMON, '--steps', 4, '--out', run, '--resume')
    assert code == 2 and not marker.exists()
    line = one_line(err)
    assert line == (f'scae_train: error: cannot read checkpoint {run/T.CHECKPOINT} (it holds objects that are not plain '
                    f'tensors ({os.system.__module__}.system), and such a file is never loaded: a checkpoint is data, '
                    'not code); no usable checkpoint left')
    assert 'weights_only' not in line and 'succeed' not in line


def test_garbage_checkpoint_is_corrupted_without_unsafe_advice(tmp_path):
    for content in (b'not a checkpoint', b'PK\x03\x04 truncated'):        # not a pickle; a cut-off zip archive
        (tmp_path/T.CHECKPOINT).write_bytes(content)
        with pytest.raises(T.CheckpointError) as e: T.read_checkpoint(tmp_path/T.CHECKPOINT)
        msg = str(e.value)
        assert msg.startswith(f'cannot read checkpoint {tmp_path/T.CHECKPOINT} (corrupted or incomplete: ')
        assert 'weights_only' not in msg and 'not plain tensors' not in msg, msg
