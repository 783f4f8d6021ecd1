// Recolour the token heatmaps: logprob (default), advantage or entropy.
(function () {
  const select = document.getElementById("heat-mode");
  if (!select) return;
  const maxAdv = Math.max(1e-9, ...Array.from(document.querySelectorAll(".heatmap"))
    .map((el) => Math.abs(parseFloat(el.dataset.adv)) || 0));
  function colour(mode, tok, adv) {
    if (mode === "advantage") {
      if (Number.isNaN(adv)) return "transparent";
      const a = Math.min(1, Math.abs(adv) / maxAdv) * 0.7;
      return adv >= 0 ? `rgba(40,160,70,${a})` : `rgba(220,60,40,${a})`;
    }
    if (mode === "entropy") {
      const e = parseFloat(tok.dataset.ent);
      return Number.isNaN(e) ? "transparent" : `rgba(50,100,220,${Math.min(1, e / 4) * 0.75})`;
    }
    const lp = parseFloat(tok.dataset.lp);
    return Number.isNaN(lp) ? "transparent" : `rgba(220,60,40,${(1 - Math.exp(lp)) * 0.75})`;
  }
  function apply() {
    const mode = select.value;
    document.querySelectorAll(".heatmap").forEach((map) => {
      const adv = parseFloat(map.dataset.adv);
      map.querySelectorAll(".tok").forEach((tok) => {
        tok.style.background = colour(mode, tok, adv);
      });
    });
    document.body.dataset.heat = mode;
  }
  select.addEventListener("change", apply);
  apply();
})();
