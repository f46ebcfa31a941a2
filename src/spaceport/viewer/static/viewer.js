// The Spaceport viewer: renders scene.sog with the PlayCanvas engine and orbits around a target.
//
// The page publishes its progress on window.spaceportViewer = {state, splats, error} so that tests
// (and people in the console) can wait for 'rendered' instead of guessing with sleeps.
import * as pc from './playcanvas.min.mjs';

const status = { state: 'loading', splats: 0, error: null };
window.spaceportViewer = status;

const message = document.getElementById('viewer-message');

// The help line hides with H or its button, and comes back with H or the '?' button; it works while the
// scene loads, and when it fails to.
const help = document.getElementById('viewer-help');
const showHelp = document.getElementById('viewer-help-show');

function setHelpVisible(visible) {
  help.hidden = !visible;
  showHelp.hidden = visible;
}

for (const [button, visible] of [[document.getElementById('viewer-help-hide'), false], [showHelp, true]]) {
  button.addEventListener('click', () => {
    setHelpVisible(visible);
    // Focus back on the canvas, whose key handler resets the view with F.
    document.getElementById('viewer-canvas').focus();
  });
}
window.addEventListener('keydown', (event) => {
  if ((event.key === 'h' || event.key === 'H') && !event.ctrlKey && !event.metaKey && !event.altKey) {
    setHelpVisible(help.hidden);
  }
});

function fail(error) {
  const text = String(error?.message ?? error);
  Object.assign(status, { state: 'error', error: text });
  message.textContent = `Could not show the scene: ${text}`;
  message.hidden = false;
  console.error('spaceport viewer:', error);
}

const ORBIT_DEGREES_PER_PIXEL = 0.3;
const ZOOM_PER_WHEEL_UNIT = 0.0015;
// Stop short of the poles: at the up axis, lookAt has no defined right vector.
const MIN_POLAR_DEGREES = 2;

/**
 * Mouse and touch orbit controls around a target, about an arbitrary up axis (the training camera's),
 * so that COLMAP scenes (y down) orbit naturally without re-orienting the data.
 */
class OrbitController {
  constructor(entity, canvas, view, onChange) {
    this.entity = entity;
    this.canvas = canvas;
    this.onChange = onChange;
    this.home = view;
    this.reset();
    this.attach();
  }

  reset() {
    this.target = new pc.Vec3(...this.home.target);
    this.up = new pc.Vec3(...this.home.up).normalize();
    this.offset = new pc.Vec3(...this.home.position).sub(this.target);
    this.apply();
  }

  get distance() {
    return this.offset.length();
  }

  orbit(dx, dy) {
    const yaw = new pc.Quat().setFromAxisAngle(this.up, -dx * ORBIT_DEGREES_PER_PIXEL);
    yaw.transformVector(this.offset, this.offset);
    // Clamp the pitch so that the angle between the offset and the up axis stays inside (0, 180).
    const polar = Math.acos(pc.math.clamp(this.offset.clone().normalize().dot(this.up), -1, 1)) * pc.math.RAD_TO_DEG;
    const pitch = pc.math.clamp(-dy * ORBIT_DEGREES_PER_PIXEL, MIN_POLAR_DEGREES - polar, 180 - MIN_POLAR_DEGREES - polar);
    const right = new pc.Vec3().cross(this.offset, this.up).normalize();
    new pc.Quat().setFromAxisAngle(right, pitch).transformVector(this.offset, this.offset);
    this.apply();
  }

  pan(dx, dy) {
    // World units per pixel at the target's depth, so the point under the cursor follows it.
    const fov = this.entity.camera.fov * pc.math.DEG_TO_RAD;
    const unitsPerPixel = (2 * this.distance * Math.tan(fov / 2)) / Math.max(1, this.canvas.clientHeight);
    const move = this.entity.right.clone().mulScalar(-dx * unitsPerPixel);
    move.add(this.entity.up.clone().mulScalar(dy * unitsPerPixel));
    this.target.add(move);
    this.apply();
  }

  zoom(wheelDelta) {
    const scale = Math.exp(wheelDelta * ZOOM_PER_WHEEL_UNIT);
    const distance = Math.max(this.home.minDistance, this.distance * scale);
    this.offset.normalize().mulScalar(distance);
    this.apply();
  }

  apply() {
    const camera = this.entity.camera;
    this.entity.setPosition(this.target.clone().add(this.offset));
    this.entity.lookAt(this.target, this.up);
    // Clip planes follow the distance: scenes come in arbitrary COLMAP units.
    camera.nearClip = this.distance * 0.01;
    camera.farClip = this.distance * 100 + this.home.sceneRadius * 4;
    this.onChange();
  }

  attach() {
    const canvas = this.canvas;
    let drag = null;
    canvas.addEventListener('contextmenu', (event) => event.preventDefault());
    canvas.addEventListener('pointerdown', (event) => {
      const panning = event.button === 2 || event.button === 1 || event.shiftKey;
      drag = { id: event.pointerId, x: event.clientX, y: event.clientY, panning };
      canvas.setPointerCapture(event.pointerId);
      canvas.focus();
    });
    canvas.addEventListener('pointermove', (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      drag.x = event.clientX;
      drag.y = event.clientY;
      if (drag.panning) this.pan(dx, dy);
      else this.orbit(dx, dy);
    });
    const endDrag = (event) => {
      if (drag && event.pointerId === drag.id) drag = null;
    };
    canvas.addEventListener('pointerup', endDrag);
    canvas.addEventListener('pointercancel', endDrag);
    canvas.addEventListener('wheel', (event) => {
      event.preventDefault();
      // deltaMode 1 is lines (Firefox); make a line worth about as much as a wheel notch in pixels.
      this.zoom(event.deltaMode === 1 ? event.deltaY * 33 : event.deltaY);
    }, { passive: false });
    canvas.addEventListener('keydown', (event) => {
      if (event.key === 'f' || event.key === 'F') this.reset();
    });
  }
}

/** The initial view: the training camera given by the run, or the scene's bounds seen along +z. */
function initialView(camera, aabb) {
  const centre = aabb.center;
  const radius = Math.max(aabb.halfExtents.length(), 1e-6);
  if (camera) {
    return { ...camera, sceneRadius: radius, minDistance: radius * 0.01 };
  }
  const fov = 60;
  const distance = (radius / Math.sin((fov / 2) * pc.math.DEG_TO_RAD)) * 1.05;
  // COLMAP's frame: the first camera looks along +z with its image's up along -y.
  return {
    position: [centre.x, centre.y, centre.z - distance],
    target: [centre.x, centre.y, centre.z],
    up: [0, -1, 0],
    fov,
    sceneRadius: radius,
    minDistance: radius * 0.01,
  };
}

function createApp(canvas, config) {
  const app = new pc.Application(canvas, {
    graphicsDeviceOptions: { deviceTypes: [pc.DEVICETYPE_WEBGL2], antialias: false, alpha: false },
  });
  app.setCanvasFillMode(pc.FILLMODE_FILL_WINDOW);
  app.setCanvasResolution(pc.RESOLUTION_AUTO);
  // Render on demand: a still scene costs nothing, which matters on laptops and software GL.
  app.autoRender = false;
  window.addEventListener('resize', () => {
    app.resizeCanvas();
    app.renderNextFrame = true;
  });
  const camera = new pc.Entity('camera');
  camera.addComponent('camera', { clearColor: new pc.Color(...config.background), fov: 60 });
  app.root.addChild(camera);
  return { app, camera };
}

/**
 * Resolves once a frame has been drawn with every splat loaded and sorted for the current view.
 * The unified gsplat renderer reports readiness per frame and asks for more frames while a sort is pending.
 */
function whenRendered(app) {
  return new Promise((resolve) => {
    let sorted = false;
    let ready = false;
    let pending = false;
    app.scene.on('gsplat:sorted', () => {
      sorted = true;
    });
    app.systems.gsplat.on('frame:ready', (camera, layer, isReady, loadingCount) => {
      ready = isReady && loadingCount === 0;
    });
    app.systems.gsplat.on('frame:request', () => {
      pending = true;
      app.renderNextFrame = true;
    });
    const check = () => {
      if (sorted && ready && !pending) {
        app.off('frameend', check);
        resolve();
      }
      pending = false;
    };
    app.on('frameend', check);
  });
}

function loadScene(app, url) {
  return new Promise((resolve, reject) => {
    const asset = new pc.Asset('scene', 'gsplat', { url });
    asset.on('error', (error) => reject(new Error(`loading ${url}: ${error}`)));
    asset.ready(() => resolve(asset));
    app.assets.add(asset);
    app.assets.load(asset);
  });
}

async function main() {
  const config = JSON.parse(document.getElementById('spaceport-config').textContent);
  const canvas = document.getElementById('viewer-canvas');
  const { app, camera } = createApp(canvas, config);
  const rendered = whenRendered(app);
  app.start();

  const asset = await loadScene(app, config.scene);
  const splat = new pc.Entity('scene');
  splat.addComponent('gsplat', { asset });
  app.root.addChild(splat);

  const view = initialView(config.camera, asset.resource.aabb);
  camera.camera.fov = view.fov;
  new OrbitController(camera, canvas, view, () => {
    app.renderNextFrame = true;
  });
  status.splats = asset.resource.numSplats;
  app.renderNextFrame = true;

  await rendered;
  message.hidden = true;
  status.state = 'rendered';
}

main().catch(fail);
