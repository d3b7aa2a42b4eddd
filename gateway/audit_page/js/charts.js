// Charts as inline SVG, drawn here: no chart library, nothing fetched.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A "nice" upper bound and tick step for values up to `max`. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: 1, step: 1 };
  const rough = max / ticks;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) || 10 * power;
  return { top: Math.ceil(max / step) * step, step };
}

/** Widest bar, in viewBox units: a single day must not fill the whole chart. */
const MAX_BAR = 36;

const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/**
 * Grouped bars, one group per point (e.g. per day), one bar per series.
 * points: [{label, values: {key: number}}]; series: [{key, label, cls}].
 */
export function groupedBarChart(points, series, { width = 760, height = 240 } = {}) {
  const margin = { top: 12, right: 12, bottom: 34, left: 52 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "bar-chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  const max = Math.max(0, ...points.flatMap((p) => series.map((s) => p.values[s.key] || 0)));
  const { top, step } = niceScale(max);
  const y = (v) => margin.top + plotH - (v / top) * plotH;

  const grid = svg("g", { class: "grid" });
  for (let v = 0; v <= top + step / 2; v += step) {
    grid.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }));
    grid.append(svg("text", { x: margin.left - 6, y: y(v) + 4, "text-anchor": "end" }, compact.format(v)));
  }
  root.append(grid);

  const band = plotW / Math.max(points.length, 1);
  const gap = Math.min(8, band * 0.2);
  const barW = Math.max(1, Math.min(MAX_BAR, (band - gap) / series.length));
  const groupW = barW * series.length;
  const labelEvery = Math.max(1, Math.ceil(points.length / 10));
  const bars = svg("g", { class: "bars" });
  points.forEach((point, i) => {
    const x0 = margin.left + i * band + (band - groupW) / 2;
    series.forEach((s, j) => {
      const value = point.values[s.key] || 0;
      const rect = svg("rect", {
        x: x0 + j * barW,
        y: y(value),
        width: Math.max(barW - 1, 1),
        height: Math.max(margin.top + plotH - y(value), 0),
        class: s.cls,
      });
      rect.append(svg("title", {}, `${point.label} · ${s.label}: ${value.toLocaleString("en-US")}`));
      bars.append(rect);
    });
    if (i % labelEvery === 0) {
      root.append(svg("text", {
        x: x0 + groupW / 2,
        y: height - margin.bottom + 16,
        "text-anchor": "middle",
        class: "x-label",
      }, point.label));
    }
  });
  root.append(bars);
  root.append(svg("line", {
    class: "axis",
    x1: margin.left, x2: width - margin.right,
    y1: margin.top + plotH, y2: margin.top + plotH,
  }));
  return root;
}

/** The legend for `series` as HTML (swatches share the bars' classes). */
export function legend(series) {
  const box = document.createElement("div");
  for (const s of series) {
    const item = document.createElement("span");
    const swatch = svg("svg", { width: 12, height: 12, "aria-hidden": "true" });
    swatch.append(svg("rect", { width: 12, height: 12, rx: 2, class: s.cls }));
    item.append(swatch, document.createTextNode(` ${s.label}`));
    box.append(item);
  }
  return box;
}
