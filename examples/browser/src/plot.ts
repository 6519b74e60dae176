/** A small inline-SVG line plot: a few series, axes with ticks, optional marker lines and a legend. */

export interface Series {
  label: string;
  colour: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
  /** Draw a cross at the last point (a pruned seed). */
  endCross?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Default: the data's range (y padded a little). */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
  vLines?: readonly { x: number; label: string }[];
  hLines?: readonly { y: number; label: string }[];
  width?: number;
  height?: number;
}

const SVG = 'http://www.w3.org/2000/svg';
/** Margins; the legend sits in the right one. */
const PAD = { left: 48, right: 140, top: 24, bottom: 36 };

function node<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function range(values: number[], fallback: readonly [number, number]): [number, number] {
  if (values.length === 0) return [fallback[0], fallback[1]];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/** Up to ~5 round tick values in [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-6; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(v) : v.toPrecision(3));

export function linePlot(series: readonly Series[], o: PlotOptions): SVGSVGElement {
  const width = o.width ?? 540;
  const height = o.height ?? 260;
  const all = series.flatMap((s) => s.points);
  const [x0, x1] =
    o.xRange ??
    range(
      all.map((p) => p[0]),
      [0, 1],
    );
  let [y0, y1] =
    o.yRange ??
    range(
      all.map((p) => p[1]),
      [0, 1],
    );
  if (o.yRange === undefined) {
    const pad = (y1 - y0) * 0.08;
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  const iw = width - PAD.left - PAD.right;
  const ih = height - PAD.top - PAD.bottom;
  const sx = (x: number) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * iw;
  const sy = (y: number) => PAD.top + ih - ((y - y0) / (y1 - y0 || 1)) * ih;
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, width, height, class: 'plot', role: 'img' });
  svg.append(node('title', {}, o.title));
  svg.append(node('text', { x: PAD.left, y: 15, class: 'plot-title' }, o.title));
  for (const t of ticks(y0, y1)) {
    svg.append(node('line', { x1: PAD.left, x2: PAD.left + iw, y1: sy(t), y2: sy(t), class: 'grid' }));
    svg.append(node('text', { x: PAD.left - 6, y: sy(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmt(t)));
  }
  for (const t of ticks(x0, x1)) {
    svg.append(
      node('text', { x: sx(t), y: PAD.top + ih + 16, class: 'tick', 'text-anchor': 'middle' }, fmt(t)),
    );
  }
  svg.append(node('rect', { x: PAD.left, y: PAD.top, width: iw, height: ih, class: 'frame' }));
  svg.append(
    node('text', { x: PAD.left + iw / 2, y: height - 4, class: 'axis', 'text-anchor': 'middle' }, o.xLabel),
  );
  svg.append(
    node(
      'text',
      { x: 12, y: PAD.top + ih / 2, class: 'axis', transform: `rotate(-90 12 ${PAD.top + ih / 2})` },
      o.yLabel,
    ),
  );
  for (const v of o.vLines ?? []) {
    svg.append(node('line', { x1: sx(v.x), x2: sx(v.x), y1: PAD.top, y2: PAD.top + ih, class: 'marker' }));
    svg.append(node('text', { x: sx(v.x) + 4, y: PAD.top + 12, class: 'marker-label' }, v.label));
  }
  for (const h of o.hLines ?? []) {
    svg.append(node('line', { x1: PAD.left, x2: PAD.left + iw, y1: sy(h.y), y2: sy(h.y), class: 'marker' }));
    svg.append(
      node(
        'text',
        { x: PAD.left + iw - 4, y: sy(h.y) - 4, class: 'marker-label', 'text-anchor': 'end' },
        h.label,
      ),
    );
  }
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
      svg.append(
        node('path', {
          d: d.join(' '),
          stroke: s.colour,
          class: `line${s.dashed ? ' dashed' : ''}`,
          'data-series': s.label,
        }),
      );
      for (const p of s.points) {
        svg.append(node('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: s.colour }));
      }
      const last = s.points[s.points.length - 1] as readonly [number, number];
      if (s.endCross) {
        const [cx, cy] = [sx(last[0]), sy(last[1])];
        svg.append(
          node('path', {
            d: `M${cx - 5},${cy - 5} L${cx + 5},${cy + 5} M${cx - 5},${cy + 5} L${cx + 5},${cy - 5}`,
            stroke: s.colour,
            class: 'cross',
          }),
        );
      }
    }
    const lx = PAD.left + iw + 10;
    const ly = PAD.top + 6 + i * 14;
    svg.append(
      node('line', {
        x1: lx,
        x2: lx + 16,
        y1: ly,
        y2: ly,
        stroke: s.colour,
        class: `legend${s.dashed ? ' dashed' : ''}`,
      }),
    );
    svg.append(node('text', { x: lx + 20, y: ly + 4, class: 'legend-label' }, s.label));
  });
  return svg;
}
