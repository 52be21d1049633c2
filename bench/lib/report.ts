export interface Figure {
  id: string;
  name: string;
  darkroom: string;
  baseline: string;
  /** Darkroom against its baseline, or against the smallest batch for scaling. */
  ratio: number;
  goal: string;
  /** null when the figure has no pass/fail goal of its own. */
  met: boolean | null;
}

/** Figures in table order, plus the raw numbers behind them, per scenario. */
export class Report {
  readonly figures: Figure[] = [];
  readonly raw = new Map<string, string[]>();
  readonly elapsed = new Map<string, number>();

  add(f: Figure) {
    this.figures.push(f);
    return f;
  }

  note(scenario: string, line: string) {
    const lines = this.raw.get(scenario) ?? [];
    lines.push(line);
    this.raw.set(scenario, lines);
  }

  table(): string {
    const rows = [
      '| # | Figure | Darkroom | Baseline (same run) | Ratio | Goal | Met |',
      '|---|--------|----------|---------------------|-------|------|-----|',
      ...this.figures.map(
        (f) =>
          `| ${f.id} | ${f.name} | ${f.darkroom} | ${f.baseline} | ${Number.isFinite(f.ratio) ? f.ratio.toFixed(2) : '–'} | ${f.goal} | ${f.met === null ? '–' : f.met ? 'yes' : '**no**'} |`,
      ),
    ];
    return rows.join('\n');
  }

  rawNumbers(): string {
    const out: string[] = [];
    for (const [scenario, lines] of this.raw) {
      const secs = this.elapsed.get(scenario);
      out.push(`${scenario}${secs === undefined ? '' : ` (${(secs / 1000).toFixed(1)} s)`}:`);
      for (const l of lines) out.push(`  - ${l}`);
    }
    return out.join('\n');
  }
}
