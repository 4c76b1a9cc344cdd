// The dashboard's style: state colours (up, down, drain, maint; VRRP states), cards per pool and
// small charts. No external fonts or images.
export const DASHBOARD_CSS = `
:root {
  --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --mute: #6b7385; --line: #e2e5ea;
  --up: #2e9e4f; --down: #d64541; --drain: #e08e0b; --maint: #5b6ee1; --off: #8a93a6;
  --chart: #3b7dd8; --chart2: #9b59b6;
}
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: center; gap: 18px; padding: 10px 18px; background: #1d2330; color: #eef1f6; position: sticky; top: 0; z-index: 2; }
header h1 { font-size: 17px; margin: 0; letter-spacing: .5px; }
header .status { display: flex; flex-wrap: wrap; gap: 14px; color: #c3c9d6; }
header .status b { color: #fff; font-weight: 600; }
header .right { margin-left: auto; display: flex; gap: 10px; align-items: center; }
.live { padding: 2px 8px; border-radius: 10px; font-size: 12px; background: var(--off); color: #fff; }
.live[data-live="live"] { background: var(--up); }
.live[data-live="reconnecting"] { background: var(--down); }
button { font: inherit; border: 1px solid var(--line); background: #fff; color: var(--ink); border-radius: 4px; padding: 2px 8px; cursor: pointer; }
button:hover { border-color: var(--mute); }
header button { background: #2c3445; color: #eef1f6; border-color: #48526a; }
main { padding: 14px 18px 40px; display: grid; gap: 16px; }
.part h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .8px; color: var(--mute); }
.part[hidden] { display: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; margin-bottom: 12px; overflow: hidden; }
.card-head { display: flex; flex-wrap: wrap; align-items: center; gap: 14px; padding: 8px 12px; border-bottom: 1px solid var(--line); }
.card-head h3 { margin: 0; font-size: 15px; }
.card-head .facts { display: flex; flex-wrap: wrap; gap: 12px; color: var(--mute); }
.card-head .facts b { color: var(--ink); font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; padding: 8px 12px; border-bottom: 1px solid var(--line); }
.chart { display: grid; gap: 2px; }
.chart .label { color: var(--mute); font-size: 11px; display: flex; justify-content: space-between; gap: 10px; }
.chart .label b { color: var(--ink); }
svg.spark { display: block; background: #fafbfc; border: 1px solid var(--line); border-radius: 3px; }
svg.spark path.line { fill: none; stroke: var(--chart); stroke-width: 1.5; }
svg.spark path.area { fill: var(--chart); opacity: .12; stroke: none; }
svg.spark.latency path.line { stroke: var(--chart2); }
svg.spark.latency path.area { fill: var(--chart2); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: middle; }
th { font-size: 11px; text-transform: uppercase; letter-spacing: .5px; color: var(--mute); font-weight: 600; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
tr[data-state] td:first-child { border-left: 4px solid var(--off); }
tr[data-state="up"] td:first-child { border-left-color: var(--up); }
tr[data-state="down"] td:first-child { border-left-color: var(--down); }
tr[data-state="drain"] td:first-child { border-left-color: var(--drain); }
tr[data-state="maint"] td:first-child { border-left-color: var(--maint); }
tr[data-state="down"] { background: #fdf1f0; }
tr[data-state="maint"] { background: #f2f3fc; }
tr[data-state="drain"] { background: #fdf7ea; }
.badge { display: inline-block; min-width: 52px; text-align: center; padding: 1px 6px; border-radius: 3px; color: #fff; font-size: 11px; font-weight: 700; letter-spacing: .4px; background: var(--off); }
.badge[data-state="up"], .badge[data-state="MASTER"] { background: var(--up); }
.badge[data-state="down"], .badge[data-state="FAULT"] { background: var(--down); }
.badge[data-state="drain"] { background: var(--drain); }
.badge[data-state="maint"], .badge[data-state="BACKUP"] { background: var(--maint); }
.checks { display: flex; gap: 6px; flex-wrap: wrap; }
.check { padding: 0 5px; border-radius: 3px; border: 1px solid var(--line); font-size: 11px; }
.check[data-up="true"] { border-color: var(--up); color: var(--up); }
.check[data-up="false"] { border-color: var(--down); color: var(--down); }
.mute { color: var(--mute); }
.actions { display: flex; gap: 4px; }
.actions button[data-current="true"] { background: var(--ink); color: #fff; border-color: var(--ink); }
.reasons { color: var(--down); font-size: 11px; }
.ipvs td.vs { font-weight: 600; background: #fafbfc; }
dialog { border: 1px solid var(--line); border-radius: 6px; padding: 16px; max-width: 380px; }
dialog::backdrop { background: rgba(20, 24, 33, .45); }
dialog input { width: 100%; font: inherit; padding: 6px; margin: 6px 0 10px; }
dialog .buttons { display: flex; justify-content: flex-end; gap: 6px; }
.toast { position: fixed; right: 18px; bottom: 18px; background: var(--ink); color: #fff; padding: 8px 12px; border-radius: 5px; opacity: 0; transition: opacity .2s; max-width: 460px; }
.toast[data-show="true"] { opacity: .95; }
.toast[data-kind="error"] { background: var(--down); }
.empty { color: var(--mute); padding: 6px 0; }
`;
