// The look every chart of the page shares (dark theme, en-US numbers on the axes), so the
// candle, equity and period charts differ only in what they draw.

export const THEME = { text: "#cbd5e1", grid: "#1e293b" };

/** A lightweight-charts chart in `container` with the shared theme; null when the library is missing. */
export function makeChart(container, { priceFormatter, ...options } = {}) {
  const LC = window.LightweightCharts;
  if (!LC) return null;
  return LC.createChart(container, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: THEME.text, panes: { separatorColor: THEME.grid } },
    grid: { vertLines: { color: THEME.grid }, horzLines: { color: THEME.grid } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: THEME.grid },
    rightPriceScale: { borderColor: THEME.grid },
    localization: { locale: "en-US", priceFormatter },
    ...options,
  });
}
