// The Spaceport console: jobs with their live progress, new jobs by drag-and-drop, cancel, retry, open a scene.
// Every call goes to the console's own server (which signs the AWS calls); the page holds no AWS credential.
// State for people and tests: window.spaceportConsole (jobs, uploads, ready, errors).

const token = document.querySelector('meta[name="spaceport-console-token"]').content;
const REFRESH_MS = 2000;
const ENDED = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
const state = { jobs: [], uploads: [], staging: {}, ready: false, errors: [], refreshedAt: null };
window.spaceportConsole = state;

const $ = (selector) => document.querySelector(selector);

async function api(method, path, body) {
  const options = { method, headers: { 'X-Spaceport-Console': token } };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || `${response.status} ${response.statusText}`);
  return answer;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function bar(fraction) {
  const outer = element('div', 'bar');
  const inner = element('span');
  inner.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
  outer.append(inner);
  return outer;
}

function showError(error) {
  state.errors.push(String(error.message || error));
  const message = $('#message');
  message.textContent = String(error.message || error);
  message.hidden = false;
}

// ------------------------------------------------------------------ what a job says

function liveText(stage, live) {
  if (!live) return '';
  if (stage === 'train' && live.step !== undefined) {
    const parts = [`step ${live.step}${live.total_steps ? ` / ${live.total_steps}` : ''}`];
    if (live.psnr !== undefined) parts.push(`PSNR ${live.psnr.toFixed(2)} dB`);
    if (live.gaussians !== undefined) parts.push(`${live.gaussians.toLocaleString('en')} Gaussians`);
    return parts.join(' · ');
  }
  if (stage === 'sfm' && live.phase) {
    if (live.registered !== undefined) return `${live.phase} · ${live.registered} / ${live.photos} photos registered`;
    return `${live.phase} · ${live.photos} photos`;
  }
  return '';
}

function resultText(job) {
  const train = ((job.stages || {}).train || {}).figures || {};
  const compress = ((job.stages || {}).compress || {}).figures || {};
  const parts = [];
  if (train.test_psnr !== undefined) parts.push(`held-out PSNR ${train.test_psnr.toFixed(2)} dB`);
  if (compress.gaussians !== undefined) parts.push(`${compress.gaussians.toLocaleString('en')} Gaussians`);
  if (compress.sog_bytes !== undefined) parts.push(`${(compress.sog_bytes / 1e6).toFixed(1)} MB`);
  return parts.join(' · ');
}

function costText(job) {
  const cost = job.cost || {};
  if (!cost.stages || !Object.keys(cost.stages).length) return '—';
  return `${cost.total.toFixed(2)} ${cost.currency || 'USD'}`;
}

function stageText(job) {
  if (job.status === 'SUCCEEDED') return 'done';
  if (job.status === 'AWAITING_UPLOAD') return 'awaiting its upload';
  const stage = job.failed_stage || job.stage;
  if (!stage) return 'starting';
  const record = (job.stages || {})[stage] || {};
  return `${stage} ${(record.status || 'pending').toLowerCase()}`;
}

function actionButton(label, className, handler) {
  const button = element('button', className, label);
  button.type = 'button';
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await handler(button);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
      refresh();
    }
  });
  return button;
}

async function openScene(job, button) {
  // A tab opened now, while the click counts: a window opened after the download would be a blocked popup.
  const tab = window.open('about:blank', '_blank');
  button.textContent = 'Preparing…';
  try {
    const { url } = await api('POST', `/api/jobs/${job.job_id}/open`);
    if (tab) tab.location.href = url;
    else window.location.href = url;
  } catch (error) {
    if (tab) tab.close();
    throw error;
  } finally {
    button.textContent = 'Open scene';
  }
}

function jobCard(job) {
  const card = element('article', `job ${job.status.toLowerCase()}`);
  card.dataset.jobId = job.job_id;
  card.dataset.status = job.status;
  card.dataset.stage = job.stage || '';

  const id = element('div', 'job-id', job.job_id.slice(0, 8));
  id.title = job.job_id;
  id.append(element('small', '', (job.created_at || '').slice(0, 16).replace('T', ' ')));

  const status = element('div', 'status');
  status.append(element('span', `badge ${job.status.toLowerCase()}`, job.status.replace('_', ' ')));

  const progress = element('div', 'progress');
  progress.append(element('div', 'stage', stageText(job)));
  progress.append(bar(job.status === 'SUCCEEDED' ? 1 : job.progress || 0));
  const stage = job.stage;
  const record = (job.stages || {})[stage] || {};
  const live = record.status === 'RUNNING' ? liveText(stage, record.live) : '';
  if (live) progress.append(element('div', 'live', live));
  if (job.status === 'SUCCEEDED' && resultText(job)) progress.append(element('div', 'result', resultText(job)));
  if (job.waiting) progress.append(element('div', 'waiting', `waiting ${job.waiting}`));
  if (job.status === 'FAILED') progress.append(element('div', 'reason', job.failure_reason || 'failed'));
  if (record.log && !ENDED.includes(job.status)) {
    progress.append(element('div', 'log', `log ${record.log.stream}`));
  }

  const cost = element('div', 'cost', costText(job));
  cost.title = 'SageMaker cost so far';

  const actions = element('div', 'actions');
  if (!ENDED.includes(job.status)) {
    actions.append(actionButton('Cancel', 'danger', () => api('POST', `/api/jobs/${job.job_id}/cancel`, {})));
  }
  if (job.status === 'FAILED' || job.status === 'CANCELLED') {
    actions.append(actionButton('Retry', '', () => api('POST', `/api/jobs/${job.job_id}/retry`, {})));
  }
  if (job.status === 'SUCCEEDED') {
    actions.append(actionButton('Open scene', 'primary', (button) => openScene(job, button)));
  }
  card.append(id, status, progress, cost, actions);
  return card;
}

function header() {
  const row = element('div', 'job-header');
  row.append(element('div', 'job-id', 'Job'), element('div', 'status', 'Status'),
    element('div', 'progress', 'Stage and progress'), element('div', 'cost', 'Cost'), element('div', 'actions'));
  return row;
}

function renderJobs() {
  const list = $('#jobs');
  list.replaceChildren(header(), ...state.jobs.map(jobCard));
  if (!state.jobs.length) list.append(element('p', 'empty', 'No jobs yet: drop photos to start one.'));
  if (state.refreshedAt) $('#refreshed').textContent = `· updated ${state.refreshedAt.toLocaleTimeString('en-GB')}`;
}

// ------------------------------------------------------------------ uploads

function uploadItem(upload) {
  const item = element('li', 'upload');
  item.dataset.uploadId = upload.upload_id;
  item.dataset.state = upload.state;
  const staging = state.staging[upload.upload_id];
  let text;
  let fraction = 0;
  if (upload.state === 'staging' && staging) {
    fraction = staging.sent / Math.max(1, staging.total);
    text = `copying ${staging.files} files to the console · ${Math.round(100 * fraction)} %`;
  } else if (upload.state === 'uploading') {
    fraction = upload.sent / Math.max(1, upload.total);
    text = upload.total ? `uploading · ${Math.round(100 * fraction)} %` : 'checking the photos…';
  } else if (upload.state === 'done') {
    fraction = 1;
    text = `uploaded · job ${(upload.job_id || '').slice(0, 8)}`;
  } else {
    fraction = upload.sent / Math.max(1, upload.total);
    text = upload.state;
  }
  const line = element('div', 'upload-line');
  line.append(element('strong', '', upload.name), element('span', 'hint', text));
  item.append(line, bar(fraction));
  if (upload.error) item.append(element('div', 'error', upload.error));
  if (upload.resumable) {
    item.append(actionButton('Resume upload', 'primary', () => api('POST', `/api/uploads/${upload.upload_id}/resume`)));
  }
  return item;
}

function renderUploads() {
  const shown = state.uploads.filter((upload) => upload.state !== 'done' || upload.recent);
  $('#uploads').replaceChildren(...shown.map(uploadItem));
}

function formOptions() {
  const form = new FormData($('#options'));
  const options = {};
  for (const [key, value] of form.entries()) {
    if (value === '') continue;
    options[key] = key === 'iterations' ? Number(value) : value;
  }
  return options;
}

async function submitFiles(name, files) {
  if (!files.length) throw new Error('nothing to upload: drop a folder of photos or a .zip');
  const upload = await api('POST', '/api/uploads', { name, options: formOptions() });
  upload.recent = true;
  const total = files.reduce((sum, entry) => sum + entry.file.size, 0);
  state.staging[upload.upload_id] = { sent: 0, total, files: files.length };
  state.uploads = [upload, ...state.uploads];
  renderUploads();
  for (const { path, file } of files) {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    const response = await fetch(`/api/uploads/${upload.upload_id}/files/${encoded}`, {
      method: 'PUT', headers: { 'X-Spaceport-Console': token }, body: file,
    });
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).message || response.statusText);
    state.staging[upload.upload_id].sent += file.size;
    renderUploads();
  }
  await api('POST', `/api/uploads/${upload.upload_id}/start`);
  refresh();
}

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, prefix, found) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    found.push({ path: prefix + entry.name, file });
    return;
  }
  const reader = entry.createReader();
  // A directory reader hands its entries over in batches, until an empty one.
  for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
    for (const child of batch) await walk(child, `${prefix}${entry.name}/`, found);
  }
}

async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return { name: 'photos', files: [...transfer.files].map((file) => ({ path: file.name, file })) };
  const found = [];
  for (const entry of entries) await walk(entry, '', found);
  if (entries.length === 1 && entries[0].isDirectory) {
    // One folder dropped: its photos by their paths inside it, as `submit FOLDER` zips them.
    const strip = `${entries[0].name}/`;
    return { name: entries[0].name, files: found.map(({ path, file }) => ({ path: path.slice(strip.length), file })) };
  }
  return { name: entries.length === 1 ? entries[0].name : 'photos', files: found };
}

function pickedFiles(input) {
  const files = [...input.files].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  const first = files[0] && files[0].path.includes('/') ? files[0].path.split('/')[0] : null;
  if (!first) return { name: files.length === 1 ? files[0].file.name : 'photos', files };
  return { name: first, files: files.map(({ path, file }) => ({ path: path.slice(first.length + 1), file })) };
}

function setUpDrop() {
  const drop = $('#drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    try {
      const { name, files } = await droppedFiles(event.dataTransfer);
      await submitFiles(name, files);
    } catch (error) {
      showError(error);
    }
  });
  for (const input of [$('#pick-files'), $('#pick-folder')]) {
    input.addEventListener('change', async () => {
      try {
        const { name, files } = pickedFiles(input);
        await submitFiles(name, files);
      } catch (error) {
        showError(error);
      }
      input.value = '';
    });
  }
}

// ------------------------------------------------------------------ refresh

async function refresh() {
  try {
    const answer = await api('GET', '/api/jobs');
    const recent = new Set(state.uploads.filter((upload) => upload.recent).map((upload) => upload.upload_id));
    state.jobs = answer.jobs;
    state.uploads = answer.uploads.map((upload) => ({ ...upload, recent: recent.has(upload.upload_id) }));
    state.refreshedAt = new Date();
    state.ready = true;
    $('#message').hidden = true;
  } catch (error) {
    showError(error);
  }
  renderJobs();
  renderUploads();
}

setUpDrop();
refresh();
setInterval(refresh, REFRESH_MS);
