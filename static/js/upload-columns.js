// Progressive enhancement: show the chosen extract's header columns before it is uploaded,
// so the column names can be checked without a round trip.
const input = document.getElementById("id_file");
const box = document.getElementById("file-columns");
const list = document.getElementById("file-columns-list");

// The header line split at commas outside double quotes, quotes removed ("" is one quote).
function headerColumns(line) {
  const columns = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i];
    if (ch === '"') {
      if (quoted && line[i + 1] === '"') {
        current += '"';
        i += 1;
      } else {
        quoted = !quoted;
      }
    } else if (ch === "," && !quoted) {
      columns.push(current.trim());
      current = "";
    } else {
      current += ch;
    }
  }
  columns.push(current.trim());
  return columns;
}

if (input && box && list) {
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const head = await file.slice(0, 64 * 1024).text();
    const line = head.split("\n", 1)[0].replace(/\r$/, "").replace(/^\uFEFF/, "");
    list.textContent = headerColumns(line).join(", ");
    box.hidden = false;
  });
}
