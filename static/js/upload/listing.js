// The file listing below the widget (templates/files/index.html).

/** Put a new file at the top of the listing, as the server renders it (templates/files/_row.html).
 *  Returns the row, or null when it could not be fetched. */
export async function addListingRow(filesBase, uploadId) {
  const table = document.getElementById("files");
  if (!table) return null; // the grid view: the transfer itself shows the status
  const response = await fetch(`${filesBase}/${encodeURIComponent(uploadId)}/row`, { credentials: "same-origin" });
  if (!response.ok) return null;
  const holder = document.createElement("tbody");
  holder.innerHTML = (await response.text()).trim(); // the server's own template, escaped there
  const row = holder.querySelector("tr");
  if (!row) return null;
  table.querySelector(`tr[data-upload-id="${CSS.escape(uploadId)}"]`)?.remove();
  table.querySelector("tbody").prepend(row);
  table.hidden = false;
  document.getElementById("no-files")?.remove();
  return row;
}
