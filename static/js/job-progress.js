// Live progress of a pseudonymisation job: polls the API while the job is active.
// Without JavaScript the page offers a Refresh link instead.
const box = document.getElementById("job");
if (box && box.dataset.active === "true") {
  const bar = document.getElementById("job-progress");
  const text = document.getElementById("job-progress-text");
  const status = document.getElementById("job-status");
  const poll = async () => {
    const response = await fetch(box.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const job = await response.json();
    const percent = Math.floor(job.progress * 100);
    bar.value = percent;
    bar.textContent = `${percent}%`;
    text.textContent = `${percent}% of the extract processed.`;
    if (job.status !== "queued" && job.status !== "running") {
      status.textContent = job.status;
      window.location.reload();
      return;
    }
    setTimeout(poll, 1000);
  };
  setTimeout(poll, 1000);
}
