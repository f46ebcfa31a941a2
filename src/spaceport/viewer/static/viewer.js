// The Spaceport viewer: renders scene.sog with the PlayCanvas engine and orbits around a target.
//
// The page publishes its progress on window.spaceportViewer = {state, splats, error} so that tests
// (and people in the console) can wait for 'rendered' instead of guessing with sleeps; also the current
// view (position, target, up, right) and, for a georeferenced scene, its scale bar and north arrow.
import * as pc from './playcanvas.min.mjs';

const status = { state: 'loading', splats: 0, error: null, view: null, scaleBar: null, northDegrees: null };
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
 * Mouse and touch orbit controls around a target, about the initial camera's up axis: world up (+z) for an
 * upright scene, the training camera's for one left in SfM's frame (y down), without re-orienting the data.
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
    const distance = pc.math.clamp(this.distance * scale, this.home.minDistance, this.home.maxDistance);
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

// With no camera from the run, an upright scene is seen from the south, this far above the horizon.
const DEFAULT_ELEVATION_DEGREES = 30;

// A scene with its sky baked in is wrapped in a shell of far Gaussians: its bounds are the shell's, and the camera
// must stay well inside it (from outside, the sky is a ball hiding the scene).
const SKY_SHELL_MAX_DISTANCE = 0.4;
const SKY_SHELL_MIN_DISTANCE = 0.005;

/**
 * The initial view: the camera given by the run, or the scene's bounds seen obliquely from above (an upright
 * scene) or along +z (SfM's frame).
 */
function initialView(camera, aabb, frame, skyShell) {
  const centre = aabb.center;
  const radius = Math.max(aabb.halfExtents.length(), 1e-6);
  if (camera && skyShell) {
    const shell = aabb.halfExtents.x;
    return { ...camera, sceneRadius: radius, minDistance: shell * SKY_SHELL_MIN_DISTANCE,
      maxDistance: shell * SKY_SHELL_MAX_DISTANCE };
  }
  if (camera) {
    return { ...camera, sceneRadius: radius, minDistance: radius * 0.01, maxDistance: Infinity };
  }
  const fov = 60;
  const distance = (radius / Math.sin((fov / 2) * pc.math.DEG_TO_RAD)) * 1.05;
  if (frame) {
    const elevation = DEFAULT_ELEVATION_DEGREES * pc.math.DEG_TO_RAD;
    return {
      position: [centre.x, centre.y - distance * Math.cos(elevation), centre.z + distance * Math.sin(elevation)],
      target: [centre.x, centre.y, centre.z],
      up: frame.up,
      fov,
      sceneRadius: radius,
      minDistance: radius * 0.01,
      maxDistance: Infinity,
    };
  }
  // COLMAP's frame: the first camera looks along +z with its image's up along -y.
  return {
    position: [centre.x, centre.y, centre.z - distance],
    target: [centre.x, centre.y, centre.z],
    up: [0, -1, 0],
    fov,
    sceneRadius: radius,
    minDistance: radius * 0.01,
    maxDistance: Infinity,
  };
}

// The scale bar is at most this long on screen; its length is the largest 1, 2 or 5 x 10^k metres that fits.
const SCALE_BAR_MAX_PIXELS = 120;

function niceLength(maxMetres) {
  const power = Math.pow(10, Math.floor(Math.log10(maxMetres)));
  const step = [5, 2, 1].find((candidate) => candidate * power <= maxMetres) ?? 1;
  return step * power;
}

function formatLength(metres) {
  // toPrecision drops float noise such as 0.30000000000000004.
  const [value, unit] = metres >= 1000 ? [metres / 1000, 'km'] : metres >= 1 ? [metres, 'm']
    : metres >= 0.01 ? [metres * 100, 'cm'] : [metres * 1000, 'mm'];
  return `${Number(value.toPrecision(3))} ${unit}`;
}

/**
 * The scale bar and north arrow of a georeferenced scene (x east, y north, z up, metres). The bar measures
 * lengths at the orbit target's depth; the arrow points where north lies for the way the camera faces.
 */
class MapOverlay {
  constructor(frame, canvas) {
    this.frame = frame;
    this.canvas = canvas;
    this.scale = document.getElementById('viewer-scale');
    this.bar = document.getElementById('viewer-scale-bar');
    this.label = document.getElementById('viewer-scale-label');
    this.north = document.getElementById('viewer-north');
    this.arrow = document.getElementById('viewer-north-arrow');
    this.scale.hidden = false;
    this.north.hidden = false;
  }

  update(controller) {
    const entity = controller.entity;
    const fov = entity.camera.fov * pc.math.DEG_TO_RAD;
    const unitsPerPixel = (2 * controller.distance * Math.tan(fov / 2)) / Math.max(1, this.canvas.clientHeight);
    const metresPerPixel = unitsPerPixel * this.frame.metres_per_unit;
    const metres = niceLength(SCALE_BAR_MAX_PIXELS * metresPerPixel);
    const pixels = metres / metresPerPixel;
    this.bar.style.width = `${pixels.toFixed(1)}px`;
    this.label.textContent = formatLength(metres);
    status.scaleBar = { metres, pixels };
    // A compass: the arrow turns by the camera's heading, north against the view's horizontal right and forward
    // (up x right). Unlike north's projection on the screen, it does not swing sideways near the horizon.
    const north = new pc.Vec3(...this.frame.north);
    const up = new pc.Vec3(...this.frame.up);
    const across = north.dot(entity.right);
    const upward = north.dot(new pc.Vec3().cross(up, entity.right));
    if (Math.hypot(across, upward) > 1e-6) {
      status.northDegrees = Math.atan2(across, upward) * pc.math.RAD_TO_DEG;
      this.arrow.style.transform = `rotate(${status.northDegrees.toFixed(2)}deg)`;
    }
  }
}

function publishView(controller) {
  const entity = controller.entity;
  const vector = (v) => [v.x, v.y, v.z];
  status.view = {
    position: vector(entity.getPosition()),
    target: vector(controller.target),
    up: vector(entity.up),
    right: vector(entity.right),
    orbitAxis: vector(controller.up),
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

  const frame = config.frame ?? null;
  const view = initialView(config.camera, asset.resource.aabb, frame, config.skyShell ?? false);
  camera.camera.fov = view.fov;
  const overlay = frame?.georeferenced ? new MapOverlay(frame, canvas) : null;
  let controller = null;
  const changed = () => {
    app.renderNextFrame = true;
    // The controller applies its first view while it is being built; it reports itself from then on.
    if (!controller) return;
    publishView(controller);
    overlay?.update(controller);
  };
  controller = new OrbitController(camera, canvas, view, changed);
  changed();
  window.addEventListener('resize', changed);
  status.splats = asset.resource.numSplats;
  app.renderNextFrame = true;

  await rendered;
  message.hidden = true;
  status.state = 'rendered';
}

main().catch(fail);
