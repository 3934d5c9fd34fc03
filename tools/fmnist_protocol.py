#!/usr/bin/env python
"""Train one SCAE configuration on translated 40x40 Fashion-MNIST and score it with the label-free protocol of issue 11.

Protocol: the first 8,000 training images (random translations up to 6 px) train the model and fit k-means / the linear
probe; the first 2,000 test images (fixed translations) are scored. Prints the learning diagnostics as it goes and one
JSON line at the end (also appended to --results). Raw-pixel baselines on the same images: LIN-MATCH 31.2%, LIN-PRED 47.6%.

    python tools/fmnist_protocol.py --name faithful --config mnist --steps 3000 --batch_size 32 --learning_rate 3e-5
    python tools/fmnist_protocol.py --name scale --set learn_output_scale=true ...     # one change against a baseline
"""
import argparse, ast, json, math, sys, time
from pathlib import Path
import torch
from torch.utils.data import Subset

def parse_set(items):
    "key=value pairs; values parsed as Python or JSON literals when they can be (1e-3, True/true, None/null, [1, 2]), else strings"
    out = {}
    for it in items:
        k, _, v = it.partition('=')
        try: out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            try: out[k] = json.loads(v)
            except json.JSONDecodeError: out[k] = v
    return out

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--name', required=True); ap.add_argument('--config', default='mnist')
    ap.add_argument('--set', nargs='*', default=[], help='config overrides key=value')
    ap.add_argument('--steps', type=int, default=3000); ap.add_argument('--batch_size', type=int, default=32)
    ap.add_argument('--learning_rate', type=float, default=None); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--n_train', type=int, default=8000); ap.add_argument('--n_test', type=int, default=2000)
    ap.add_argument('--eval_at', type=int, nargs='*', default=[], help='extra steps at which to score (learning curve)')
    ap.add_argument('--diagnose_every', type=int, default=250); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default=None); ap.add_argument('--results', default='runs/fmnist_protocol.jsonl')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from torch_scae_nb.configs import get_config
    from torch_scae_nb.data import make_dataset, make_loader
    from torch_scae_nb.scae import SCAE, learning_diagnostics
    from torch_scae_nb.train import Trainer, seed_everything
    from torch_scae_nb.evaluate import extract_features, classification_scores, write_figures
    overrides = parse_set(a.set)
    if a.learning_rate is not None: overrides['learning_rate'] = a.learning_rate
    cfg = get_config(a.config, batch_size=a.batch_size, dataset='fashion_mnist', **overrides)
    train = Subset(make_dataset('fashion_mnist', 'train'), range(a.n_train))
    test = Subset(make_dataset('fashion_mnist', 'test'), range(a.n_test))
    held_out = torch.stack([test[i][0] for i in range(64)])              # (64, 1, 40, 40) for the diagnostics
    seed_everything(a.seed)
    model = SCAE(cfg)
    out = Path(a.out or f'runs/fmnist/{a.name}')
    if (out/'checkpoint.pt').exists(): sys.exit(f'{out} already holds a run: choose another --out or delete it')
    loader = make_loader(train, batch_size=a.batch_size, shuffle=True, seed=a.seed, drop_last=True)
    trainer = Trainer(model, loader, out, progress=False, verbose=False, checkpoint_every=10 ** 9, log_every=50)
    t0, curve, diags = time.perf_counter(), [], []
    def score(step):
        fit = extract_features(model, train, progress=False, seed=a.seed)
        ev = extract_features(model, test, progress=False, seed=a.seed)
        s = classification_scores(fit, ev, seed=a.seed).as_dict()
        curve.append(dict(step=step, lin_match=s['lin_match_acc'], lin_pred=s['lin_pred_acc'],
                          lin_match_prior=s['lin_match_acc_prior'], lin_pred_prior=s['lin_pred_acc_prior']))
        print(f'[{a.name}] step {step}: LIN-MATCH {s["lin_match_acc"]:.3f} (prior {s["lin_match_acc_prior"]:.3f}), '
              f'LIN-PRED {s["lin_pred_acc"]:.3f} (prior {s["lin_pred_acc_prior"]:.3f})', flush=True)
        return s, fit
    stops = sorted(set(range(a.diagnose_every, a.steps, a.diagnose_every)) | set(a.eval_at) | {a.steps})
    d = learning_diagnostics(model, held_out); diags.append(dict(step=0, **d))
    for step in stops:
        trainer.fit(steps=step)
        d = learning_diagnostics(model, held_out); diags.append(dict(step=step, **d))
        print(f'[{a.name}] step {step} ({time.perf_counter() - t0:.0f} s): loss {trainer_loss(out):.1f} fit {d["image_fit"]:.3f} rec {d["recon_fit"]:.3f} '
              f'distinct {d["templates_distinct"]}/{cfg["n_part_caps"]} corr {d["template_corr"]:.2f} '
              f'pose-spread parts {d["pose_spread_parts"]:.3f} images {d["pose_spread_images"]:.3f} '
              f'prior-spread {d["prior_presence_spread"]:.4f}', flush=True)
        if step in a.eval_at and step != a.steps: score(step)
    train_time = time.perf_counter() - t0
    s, fit = score(a.steps)
    trainer.save()
    write_figures(model, test, fit, out)
    rec = dict(name=a.name, config=a.config, overrides=overrides, steps=a.steps, batch_size=a.batch_size,
               learning_rate=cfg['learning_rate'], seed=a.seed, train_seconds=round(train_time), threads=a.threads,
               lin_match=s['lin_match_acc'], lin_pred=s['lin_pred_acc'], lin_match_prior=s['lin_match_acc_prior'],
               lin_pred_prior=s['lin_pred_acc_prior'], final=diags[-1], curve=curve, out=str(out))
    (out/'protocol.json').write_text(json.dumps(dict(rec, diagnostics=diags), indent=1))
    Path(a.results).parent.mkdir(parents=True, exist_ok=True)
    with open(a.results, 'a') as f: f.write(json.dumps(rec) + '\n')
    print(json.dumps(rec))

def trainer_loss(out):
    "The last logged loss of the run in `out`"
    lines = (Path(out)/'metrics.jsonl').read_text().splitlines()
    return json.loads(lines[-1])['loss'] if lines else math.nan

if __name__ == '__main__': main()
