"""Tests of the training loop and the `scae_train` command that do not fit a notebook: the command end to end, kill
and resume in a subprocess, corrupted checkpoints, bad arguments, and DDP with two CPU processes (Gloo).

Most use the stand-in model of `standin.py` (presets `toy`, `toy_slow`, `toy_nan`) so they take seconds; one runs
the real `tiny` SCAE config on the bundled digits.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import torch_scae_nb.train as T
import standin
from standin import TOY, ToyAutoencoder, flat_params, toy_dataset

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def standin_cli(*args, wait=True):
    "`scae_train` (with the stand-in presets) in a subprocess"
    cmd = [sys.executable, str(TESTS/'standin.py'), *map(str, args)]
    if not wait: return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)




@pytest.fixture
def toy(monkeypatch):
    "In-process `scae_train` that also knows the stand-in presets"
    standin.register_toy(monkeypatch)


def main(capsys, *args):
    "Run `scae_train ARGS` in this process: (exit code, stdout, stderr)"
    code = T.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ckpt_of(folder, name=T.CHECKPOINT): return T.read_checkpoint(Path(folder)/name)


def steps_logged(folder): return [r['step'] for r in T.read_metrics(Path(folder)/T.METRICS)]


# --- the command end to end -------------------------------------------------------------------------------------

def test_cli_end_to_end_and_resume(toy, capsys, tmp_path):
    run, straight = tmp_path/'run', tmp_path/'straight'
    common = ['--config', 'toy', '--dataset', 'digits', '--batch_size', 16, '--log_every', 5, '--checkpoint_every', 10,
              '--no_progress']
    code, out, err = main(capsys, *common, '--steps', 30, '--out', run)
    assert code == 0, err
    assert 'done: step 30' in out
    assert sorted(p.name for p in run.iterdir()) == sorted([T.CHECKPOINT, T.PREVIOUS_CHECKPOINT, T.METRICS,
                                                            T.LOSS_FIGURE, T.RUN_CONFIG])
    ckpt = torch.load(run/T.CHECKPOINT, weights_only=True)
    assert (ckpt['step'], ckpt_of(run, T.PREVIOUS_CHECKPOINT)['step']) == (30, 20)
    assert ckpt['train']['dataset'] == 'digits' and ckpt['train']['batch_size'] == 16 and ckpt['config']['model'] == 'toy'
    assert steps_logged(run) == [5, 10, 15, 20, 25, 30]
    assert json.loads((run/T.RUN_CONFIG).read_text())['train']['batch_size'] == 16

    code, out, err = main(capsys, *common, '--steps', 60, '--out', run, '--resume')
    assert code == 0, err
    assert f'resuming from {run/T.CHECKPOINT} at step 30' in err
    assert ckpt_of(run)['step'] == 60 and steps_logged(run) == list(range(5, 61, 5))

    code, out, err = main(capsys, *common, '--steps', 60, '--out', straight)   # the same 60 steps in one go
    assert code == 0, err
    for k, v in ckpt_of(straight)['model'].items(): assert torch.equal(v, ckpt_of(run)['model'][k]), k
    assert ([r['loss'] for r in T.read_metrics(straight/T.METRICS)] == [r['loss'] for r in T.read_metrics(run/T.METRICS)])


def test_cli_real_tiny_config(capsys, tmp_path):
    "The real SCAE through `python -m torch_scae_nb.train`: a loadable checkpoint, metrics; then --resume (in-process)"
    from torch_scae_nb import factory
    run = tmp_path/'run'
    args = ['--config', 'tiny', '--dataset', 'digits', '--batch_size', '8', '--log_every', '1', '--checkpoint_every', '2',
            '--out', str(run), '--no_progress']
    r = subprocess.run([sys.executable, '-m', 'torch_scae_nb.train', *args, '--steps', '4'], capture_output=True,
                       text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'scae_train: tiny (scae) on digits' in r.stderr and 'done: step 4' in r.stdout
    ckpt = torch.load(run/T.CHECKPOINT, weights_only=True)
    assert ckpt['step'] == 4 and steps_logged(run) == [1, 2, 3, 4]
    assert all(v == v for r_ in T.read_metrics(run/T.METRICS) for v in r_.values())   # no NaN logged
    model = factory.make_model(ckpt['config'])
    model.load_state_dict(ckpt['model'])
    code, out, err = main(capsys, *args, '--steps', 6, '--resume')
    assert code == 0, err
    assert 'at step 4' in err and ckpt_of(run)['step'] == 6 and steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_cli_learning_diagnostics(capsys, tmp_path):
    "The real tiny SCAE with --diagnose_every 10: diagnostics records at steps 0, 10 and 20 on held-out test images"
    run = tmp_path/'run'
    code, out, err = main(capsys, '--dataset', 'digits', '--config', 'tiny', '--steps', 20, '--diagnose_every', 10,
                          '--out', run, '--no_progress')
    assert code == 0, err
    diags = T.read_metrics(run/T.METRICS, kind='diagnostics')
    assert [r['step'] for r in diags] == [0, 10, 20]
    assert all(r['kind'] == 'diagnostics' and {'templates_distinct_frac', 'pose_spread_parts', 'image_fit',
                                               'prior_presence_spread'} <= set(r) for r in diags)
    assert steps_logged(run) == [20]                                  # the loss records are unchanged (log_every 50)
    assert 'training images' not in err                               # the digits test split was built
    assert (run/T.LOSS_FIGURE).is_file()


# --- kill, resume, compare --------------------------------------------------------------------------------------

@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_kill_and_resume_matches_uninterrupted(toy, capsys, tmp_path, sig):
    "The command in a subprocess gets SIGINT (Ctrl-C) or SIGTERM after a few steps; resuming gives the uninterrupted run"
    killed, straight = tmp_path/'killed', tmp_path/'straight'
    args = ['--config', 'toy_slow', '--batch_size', 8, '--steps', 60, '--log_every', 1, '--checkpoint_every', 25,
            '--no_progress']
    proc = standin_cli(*args, '--out', killed, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(steps_logged(killed)) < 3: time.sleep(.005)
    proc.send_signal(sig)
    code, out, err = main(capsys, *args, '--out', straight)           # the uninterrupted run, meanwhile, in-process
    assert code == 0, err
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig.value, err                   # 130 for SIGINT, 143 for SIGTERM
    assert 'Traceback' not in err and f'stopped by {sig.name} at step' in err
    stopped_at = ckpt_of(killed)['step']
    assert 3 <= stopped_at < 60 and steps_logged(killed)[-1] == stopped_at

    code, out, err = main(capsys, *args, '--out', killed, '--resume')
    assert code == 0, err
    assert f'at step {stopped_at}' in err
    a, b = ckpt_of(killed), ckpt_of(straight)
    assert a['step'] == b['step'] == 60
    for k, v in b['model'].items(): assert torch.equal(a['model'][k], v), k
    assert [r['loss'] for r in T.read_metrics(killed/T.METRICS)] == [r['loss'] for r in T.read_metrics(straight/T.METRICS)]


# --- corrupted checkpoints --------------------------------------------------------------------------------------

def test_corrupted_checkpoint_falls_back_to_previous(toy, capsys, tmp_path):
    run, straight = tmp_path/'run', tmp_path/'straight'
    common = ['--config', 'toy', '--batch_size', 8, '--checkpoint_every', 2, '--log_every', 1, '--no_progress']
    assert main(capsys, *common, '--steps', 4, '--out', run)[0] == 0
    latest = run/T.CHECKPOINT
    latest.write_bytes(latest.read_bytes()[:1000])                   # a truncated write
    with pytest.raises(T.CheckpointError, match=f'cannot read checkpoint {latest}.*checkpoint_prev.pt may still be usable'):
        T.read_checkpoint(latest)

    code, out, err = main(capsys, *common, '--steps', 6, '--out', run, '--resume')
    assert code == 0, err
    assert f'cannot read checkpoint {latest}' in err and f'using the previous checkpoint {run/T.PREVIOUS_CHECKPOINT} (step 2)' in err
    assert ckpt_of(run)['step'] == 6 and steps_logged(run) == [1, 2, 3, 4, 5, 6]
    assert main(capsys, *common, '--steps', 6, '--out', straight)[0] == 0    # steps 3..6 redone exactly
    for k, v in ckpt_of(straight)['model'].items(): assert torch.equal(v, ckpt_of(run)['model'][k]), k

    for name in (T.CHECKPOINT, T.PREVIOUS_CHECKPOINT): (run/name).write_bytes(b'not a checkpoint')
    code, out, err = main(capsys, *common, '--steps', 8, '--out', run, '--resume')
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(run/T.CHECKPOINT) in err and str(run/T.PREVIOUS_CHECKPOINT) in err and 'no usable checkpoint' in err


# --- bad arguments: one line, exit 2, nothing written -----------------------------------------------------------

BAD = [
    (['--dataset', 'nope'], 'unknown --dataset'),
    (['--steps', 0], '--steps must be >= 1'),
    (['--steps', 5, '--epochs', 1], 'not both'),
    (['--batch_size', 0], '--batch_size must be >= 1'),
    (['--learning_rate', -1], '--learning_rate must be a positive number'),
    (['--learning_rate', 'inf'], '--learning_rate must be a positive number, got inf'),
    (['--amp', 'fp16', '--device', 'cpu'], 'needs a CUDA device'),
    (['--amp', 'fp32'], '--amp must be one of'),
    (['--device', 'tpu9'], 'unknown device'),
    (['--resume'], 'nothing to resume'),
    (['--bogus'], 'unrecognized arguments'),
    (['--steps', 'ten'], "invalid int value: 'ten'"),
    (['--config', 'toy', '--dataset', 'folder'], "dataset 'folder' needs data_dir"),
    (['--config', 'toy', '--dataset', 'constellation'], 'does not fit'),
    (['--config', 'toy', '--batch_size', 6, '--checkpoint_every', 0], '--checkpoint_every must be >= 1'),
    (['--config', str(Path('/nonexistent/cfg.py'))], '--config /nonexistent/cfg.py'),
]

@pytest.mark.parametrize('args,message', BAD, ids=[' '.join(map(str, a)) for a, m in BAD])
def test_bad_arguments(toy, capsys, tmp_path, args, message):
    out = tmp_path/'run'
    code, stdout, err = main(capsys, *args, '--out', out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith('scae_train: error: ') and message in err, err
    assert not out.exists()


def test_bad_arguments_against_an_existing_run(toy, capsys, tmp_path):
    run = tmp_path/'run'
    assert main(capsys, '--config', 'toy', '--batch_size', 8, '--steps', 2, '--out', run, '--no_progress')[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    for args, message in [([], 'already holds a checkpoint'),
                          (['--resume', '--batch_size', 16], "--batch_size 16 differs from the checkpoint's 8"),
                          (['--resume', '--learning_rate', 1], 'differs from the checkpoint'),
                          (['--resume', '--config', 'toy_slow'], 'differs from the config stored')]:
        code, out, err = main(capsys, '--steps', 4, '--out', run, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before      # nothing touched


def test_bad_argument_in_a_subprocess(tmp_path):
    "The real console entry point: exit status 2, one line, no traceback, nothing written"
    out = tmp_path/'run'
    r = subprocess.run([sys.executable, '-m', 'torch_scae_nb.train', '--dataset', 'nope', '--out', str(out)],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr.startswith('scae_train: error: unknown --dataset') and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


# --- a loss that blows up ---------------------------------------------------------------------------------------

def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(toy, capsys, tmp_path):
    run = tmp_path/'run'
    code, out, err = main(capsys, '--config', 'toy_nan', '--batch_size', 8, '--steps', 10, '--checkpoint_every', 1,
                          '--log_every', 1, '--out', run, '--no_progress')
    assert code == 1
    assert 'non-finite loss at step 3: offending term(s): mse=nan' in err
    assert f'the last good checkpoint is {run/T.CHECKPOINT} (step 2)' in err
    assert ckpt_of(run)['step'] == 2 and steps_logged(run) == [1, 2] and (run/T.LOSS_FIGURE).is_file()
    assert all(torch.isfinite(v).all() for v in ckpt_of(run)['model'].values())


# --- exact resume with DataLoader worker processes ----------------------------------------------------------------

def test_resume_is_exact_with_worker_processes(tmp_path):
    "Random translations drawn in 2 worker processes are replayed too (non-persistent workers)"
    from torch_scae_nb.data import make_dataset
    ds = make_dataset('digits')
    def run(folder, steps, resume=False):
        torch.manual_seed(0)
        model = ToyAutoencoder(TOY)
        loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=2, persistent_workers=False,
                                             generator=torch.Generator().manual_seed(0))
        t = T.Trainer(model, loader, folder, checkpoint_every=100, log_every=1, progress=False)
        if resume: t.resume()
        t.fit(steps=steps)
        return flat_params(model)
    straight = run(tmp_path/'a', 6)
    run(tmp_path/'b', 3)
    torch.manual_seed(1)
    assert torch.equal(run(tmp_path/'b', 6, resume=True), straight)


# --- DDP: two Gloo processes equal one process with the global batch ----------------------------------------------

def test_ddp_two_processes_match_one_process_with_the_global_batch(tmp_path):
    "2 Gloo processes x 4 examples = 1 process x 8 examples, including a resume (mid-epoch) in the DDP run"
    from torch_scae_nb.data import make_loader
    steps, global_batch = 6, 8                     # 32 examples: 4 steps per epoch; resume at step 3, end in epoch 2
    mp.spawn(standin.ddp_worker, args=(2, str(tmp_path), steps, global_batch), nprocs=2, join=True)
    ddp = torch.load(tmp_path/'ddp_params.pt', weights_only=True)

    def single(batch_size):
        torch.manual_seed(0)
        model = ToyAutoencoder(dict(TOY, image_shape=[1, 8, 8], noise=0.))
        loader = make_loader(toy_dataset(), batch_size=batch_size, shuffle=True, seed=0, distributed=True,
                             world_size=1, rank=0)      # the same shuffling (seed + epoch) as the 2-process sampler
        T.Trainer(model, loader, tmp_path/f'single{batch_size}', batch_size=global_batch, log_every=1,
                  progress=False).fit(steps=steps)
        return flat_params(model)

    torch.testing.assert_close(ddp, single(global_batch), rtol=1e-5, atol=1e-6)
    assert (ddp - single(global_batch // 2)).abs().max() > 1e-3     # one process's half-batch is not the same run
    assert steps_logged(tmp_path/'run') == list(range(1, steps + 1))  # rank 0 alone logs, once per step
    ckpt = ckpt_of(tmp_path/'run')
    assert ckpt['world_size'] == 2 and len(ckpt['rng']) == 2 and ckpt['train']['batch_size'] == global_batch


def test_torchrun_cli_two_processes(tmp_path):
    "`torchrun --nproc_per_node 2 scae_train ...` on CPU: Gloo, per-process batch, rank-0-only output"
    run = tmp_path/'run'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
           str(TESTS/'standin.py'), '--config', 'toy', '--batch_size', '8', '--log_every', '1', '--checkpoint_every', '2',
           '--out', str(run), '--no_progress', '--steps', '3']
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count('2 process(es), batch 8 (4 per process)') == 1     # printed by rank 0 only
    assert r.stdout.count('done: step 3') == 1
    ckpt = ckpt_of(run)
    assert ckpt['step'] == 3 and ckpt['world_size'] == 2 and len(ckpt['rng']) == 2 and ckpt['train']['batch_size'] == 8
    assert ckpt_of(run, T.PREVIOUS_CHECKPOINT)['step'] == 2 and steps_logged(run) == [1, 2, 3]
