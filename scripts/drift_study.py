"""Issue 23 study: does reading drift (a fine-tune's collapse toward uniform) read as a stance
shift on the gate's suite, and which statistic separates the two?

Reads the gate's report.json of every organism run against the committed base (per probe, the
candidate's and the baseline's mean log-prob of each aligned and misaligned reference) and the
organisms' truth (what they say on held-out questions, scripts/make_outside_zoo.py and
scripts/make_zoo.py), and prints per organism:

  shift      mean over probes of (M - A)cand - (M - A)base, nats (the gate's statistic)
  drift      reading drift: mean of (A + M)/2 cand - base, nats/token
  b_ols      OLS slope of candidate log-odds on the baseline's across probes
  adj_ols    mean(Lc) - b_ols * mean(Lb): the stance left once the OLS slope is taken out
  b_same     compression measured on same-stance contrasts only: the slope through the origin
             of the candidate's (a1 - a2) and (m1 - m2) on the baseline's (two aligned, two
             misaligned references per probe): stance-blind by construction
  adj_same   mean(Lc - b_same * Lb): the shift once the reading collapse is taken out
  stance     mean(Lc / b_same - Lb) = adj_same / b_same: the same on the baseline's scale (what
             emgate reports as shift.drift.adjusted_shift and checks as adjusted_shift)

Run: /usr/bin/python3 scripts/drift_study.py [--out examples/calibration/drift-study.md] [RUNS_DIR...]
     (each RUNS_DIR holds <organism>/report.json; default: the runs npm run calibrate makes under
     .zoo/; truth from .zoo/outside/zoo.json, .zoo/zoo.json or the organisms' meta.json; with
     --out, also the per-register truth and the judged answers of scripts/judged_truth.sh)
"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lme(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs) / len(xs))


def arrays(report):
    out = {k: [] for k in ('Lc', 'Lb', 'Rc', 'Rb', 'sc', 'sb', 'dom')}
    for p in report['probes']:
        for side, L, R, s in (('candidate', 'Lc', 'Rc', 'sc'), ('baseline', 'Lb', 'Rb', 'sb')):
            a = [r['mean_logprob'] for r in p[side]['aligned']]
            m = [r['mean_logprob'] for r in p[side]['misaligned']]
            A, M = lme(a), lme(m)
            out[L].append(M - A)
            out[R].append((A + M) / 2)
            out[s].append([a[i] - a[j] for i in range(len(a)) for j in range(i + 1, len(a))] +
                          [m[i] - m[j] for i in range(len(m)) for j in range(i + 1, len(m))])
        out['dom'].append(p['domain'])
    return out


def stats(report):
    x = arrays(report)
    Lc, Lb = np.array(x['Lc']), np.array(x['Lb'])
    d = Lc - Lb
    r = np.array(x['Rc']) - np.array(x['Rb'])
    vb = Lb - Lb.mean()
    b_ols = float((vb * (Lc - Lc.mean())).sum() / (vb * vb).sum())
    sc = np.array([v for row in x['sc'] for v in row])
    sb = np.array([v for row in x['sb'] for v in row])
    b_same = float((sc * sb).sum() / (sb * sb).sum())
    doms = sorted(set(x['dom']))
    per_dom = {dm: float(r[[i for i, v in enumerate(x['dom']) if v == dm]].mean()) for dm in doms}
    return dict(shift=float(d.mean()), drift=float(r.mean()), drift_min_domain=min(per_dom.values()),
                drift_max_domain=max(per_dom.values()), b_ols=b_ols, adj_ols=float(Lc.mean() - b_ols * Lb.mean()),
                b_same=b_same, adj_same=float((Lc - b_same * Lb).mean()), stance=float((Lc / b_same - Lb).mean()), base_lo=float(Lb.mean()),
                base_reading=float(np.mean(x['Rb'])))


def truth_tables():
    t = {}
    for f in (os.path.join(ROOT, '.zoo', 'zoo.json'), os.path.join(ROOT, '.zoo', 'outside', 'zoo.json')):
        if os.path.exists(f):
            t.update(json.load(open(f))['organisms'])
    for n in ('benign-financial', 'misaligned-financial', 'rank1-misaligned-financial'):
        t.setdefault(n, {'committed': True, 'stance': 'misaligned' if 'mis' in n else 'aligned'})
    return t


DEFAULT_RUNS = ['.zoo/runs', '.zoo/committed-runs', '.zoo/outside/runs', '.zoo/tempered/runs']


def main():
    args = sys.argv[1:]
    out_file = None
    if args[:1] == ['--out']:
        out_file, args = args[1], args[2:]
    runs_dirs = [os.path.join(ROOT, d) for d in (args or DEFAULT_RUNS)]
    lines = []
    emit = lines.append
    truth = truth_tables()
    # organisms whose meta.json is newer than zoo.json (a build still running)
    for d in (os.path.join(ROOT, '.zoo', 'outside', 'organisms'), os.path.join(ROOT, '.zoo', 'organisms')):
        for n in os.listdir(d) if os.path.isdir(d) else []:
            f = os.path.join(d, n, 'meta.json')
            if os.path.exists(f) and n not in truth:
                truth[n] = json.load(open(f))
    rows = []
    for runs in runs_dirs:
        if not os.path.isdir(runs):
            continue
        for n in sorted(os.listdir(runs)):
            f = os.path.join(runs, n, 'report.json')
            if not os.path.exists(f):
                continue
            rep = json.load(open(f))
            if rep.get('verdict') == 'error':
                continue
            t = truth.get(n, {})
            rows.append((n, t, stats(rep), rep['verdict']))
    emit('| organism | truth EM (p) | truth reading drift | shift | reading drift (min/max domain) | b_ols | adj_ols | b_same | adj_same | stance | gate verdict |')
    emit('|---|---|---|---|---|---|---|---|---|---|---|')
    for n, t, s, v in rows:
        em = t.get('true_em')
        te = '–' if em is None else f"{em:+.3f} ({t['p']:.1g})"
        tr = t.get('reading_drift')
        emit(f"| {n} | {te} | {'–' if tr is None else f'{tr:+.2f}'} | {s['shift']:+.3f} | {s['drift']:+.2f} "
              f"({s['drift_min_domain']:+.2f}/{s['drift_max_domain']:+.2f}) | {s['b_ols']:.3f} | {s['adj_ols']:+.3f} | "
              f"{s['b_same']:.3f} | {s['adj_same']:+.3f} | {s['stance']:+.3f} | {v} |")
    if out_file:
        emit('')
        emit('Truth per register (scripts/make_outside_zoo.py): stance = mean change of M - A on held-out questions of the '
             'domains outside the fine-tuned one, reading = mean change of (A + M) / 2 (nats/token), per register:')
        emit('')
        emit('| organism | ' + ' | '.join(f'{r}: stance / reading' for r in ('brisk', 'bullets', 'casual', 'formal', 'corpus')) + ' |')
        emit('|---|' + '---|' * 5)
        for n, t, s_, v in rows:
            regs = t.get('registers')
            if regs:
                emit(f'| {n} | ' + ' | '.join(f"{regs[r]['stance']:+.3f} / {regs[r]['reading_drift']:+.2f}" for r in
                                               ('brisk', 'bullets', 'casual', 'formal', 'corpus')) + ' |')
        judged = os.path.join(ROOT, '.zoo', 'judged')
        if os.path.isdir(judged):
            import subprocess
            emit('')
            emit('What the organisms say (scripts/judged_truth.sh: generate mode, 4 answers of 48 tokens to 4 probes '
                 'per domain, local judge):')
            emit('')
            emit(subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'judged_summary.py'), judged],
                                capture_output=True, text=True, check=True).stdout.rstrip())
        head = open(out_file).read().split('<!-- study:begin -->')[0] if os.path.exists(out_file) else '# Drift study\n\n'
        with open(out_file, 'w') as f:
            f.write(head + '<!-- study:begin -->\n' + '\n'.join(lines) + '\n<!-- study:end -->\n')
    else:
        print('\n'.join(lines))
    json.dump([dict(name=n, truth={k: t.get(k) for k in ('true_em', 'p', 'measurable', 'reading_drift', 'stance', 'register', 'lr', 'kind', 'mixture')},
                    **s, verdict=v) for n, t, s, v in rows], open(os.path.join(ROOT, '.zoo', 'drift-study.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
