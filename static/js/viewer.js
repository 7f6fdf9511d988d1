// 3D preview of a design file (STL, 3MF, OBJ) with three.js, vendored under static/vendor/three.
// Needs the import map that maps "three" and "three/addons/" (see the design page template).
//
// Markup: <div class="design-viewer" data-src="/designs/files/KEY/raw" data-format="stl"></div>
// The element gets data-viewer-state = loading | ready | error (browser tests wait on "ready"),
// and data-viewer-triangles once the model is shown.
import * as THREE from 'three';
import { STLLoader } from 'three/addons/loaders/STLLoader.js';
import { ThreeMFLoader } from 'three/addons/loaders/3MFLoader.js';
import { OBJLoader } from 'three/addons/loaders/OBJLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const FORMATS = new Set(['stl', '3mf', 'obj']);
const MODEL_COLOUR = 0x2e7d96;

function setState(el, state, message) {
  el.dataset.viewerState = state;
  let note = el.querySelector('.design-viewer__note');
  if (!message) {
    if (note) note.remove();
    return;
  }
  if (!note) {
    note = document.createElement('p');
    note.className = 'design-viewer__note';
    note.setAttribute('role', 'status');
    el.appendChild(note);
  }
  note.textContent = message;
}

function toObject(format, buffer) {
  // Flat shading: CAD parts have sharp edges, and 3MF/OBJ often come without normals.
  const material = new THREE.MeshStandardMaterial({
    color: MODEL_COLOUR, metalness: 0.05, roughness: 0.6, flatShading: true, side: THREE.DoubleSide,
  });
  if (format === 'stl') {
    const geometry = new STLLoader().parse(buffer);
    return new THREE.Mesh(geometry, material);
  }
  if (format === '3mf') {
    // 3MF may carry its own colours; keep them, use ours where the loader fell back to plain white.
    const group = new ThreeMFLoader().parse(buffer);
    group.traverse((child) => {
      const m = child.isMesh && child.material;
      if (m && !Array.isArray(m) && !m.vertexColors && !m.map && m.color && m.color.getHex() === 0xffffff) {
        child.material = material;
      }
    });
    return group;
  }
  const group = new OBJLoader().parse(new TextDecoder().decode(buffer));
  group.traverse((child) => {
    if (child.isMesh) child.material = material;
  });
  return group;
}

function countTriangles(object) {
  let triangles = 0;
  object.traverse((child) => {
    if (!child.isMesh) return;
    const g = child.geometry;
    triangles += g.index ? g.index.count / 3 : g.attributes.position.count / 3;
  });
  return Math.round(triangles);
}

function fitCamera(camera, controls, object) {
  const box = new THREE.Box3().setFromObject(object);
  const size = box.getSize(new THREE.Vector3());
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(size.length() / 2, 1e-3);
  const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2)) * 1.1;
  const direction = new THREE.Vector3(1, -1.2, 0.9).normalize();
  camera.position.copy(centre).addScaledVector(direction, distance);
  camera.near = distance / 100;
  camera.far = distance * 100;
  camera.updateProjectionMatrix();
  controls.target.copy(centre);
  controls.update();
  return { box, size, centre };
}

export async function mountViewer(el) {
  if (el.dataset.viewerState) return; // already mounted (htmx may swap the same node in again)
  const src = el.dataset.src;
  const format = (el.dataset.format || '').toLowerCase().replace(/^\./, '');
  if (!src || !FORMATS.has(format)) {
    setState(el, 'error', 'No 3D preview for this file type.');
    return;
  }
  setState(el, 'loading', 'Loading 3D preview…');

  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ antialias: true });
  } catch (err) {
    setState(el, 'error', 'The 3D preview needs WebGL, which this browser does not offer.');
    return;
  }

  try {
    const response = await fetch(src, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`the file could not be loaded (HTTP ${response.status})`);
    const object = toObject(format, await response.arrayBuffer());

    const width = el.clientWidth || 480;
    const height = el.clientHeight || Math.round(width * 0.75);
    renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    renderer.setSize(width, height);
    renderer.domElement.setAttribute('aria-label', el.dataset.label || '3D preview');
    el.appendChild(renderer.domElement);

    const scene = new THREE.Scene();
    scene.background = new THREE.Color(0xf4f3ee);
    const camera = new THREE.PerspectiveCamera(35, width / height, 0.1, 1000);
    camera.up.set(0, 0, 1); // printers and CAD are Z-up
    const sky = new THREE.HemisphereLight(0xffffff, 0x8a8a80, 1.5);
    sky.position.set(0, 0, 1);
    scene.add(sky);
    const key = new THREE.DirectionalLight(0xffffff, 1.6);
    key.position.set(1, -2, 3);
    const fill = new THREE.DirectionalLight(0xffffff, 0.6);
    fill.position.set(-2, 1, 1);
    scene.add(key, fill, object);

    const controls = new OrbitControls(camera, renderer.domElement);
    const { box, size } = fitCamera(camera, controls, object);

    // A bed grid under the model, 10 mm squares, to give a sense of size.
    const extent = Math.max(size.x, size.y, 10) * 1.5;
    const cells = Math.min(Math.max(Math.round(extent / 10), 2), 100);
    const grid = new THREE.GridHelper(cells * 10, cells, 0xb8b8ae, 0xd8d8d0);
    grid.rotation.x = Math.PI / 2;
    grid.position.set((box.min.x + box.max.x) / 2, (box.min.y + box.max.y) / 2, box.min.z);
    scene.add(grid);

    const render = () => renderer.render(scene, camera);
    controls.addEventListener('change', render);
    new ResizeObserver(() => {
      const w = el.clientWidth;
      if (!w) return;
      const h = el.clientHeight || Math.round(w * 0.75);
      renderer.setSize(w, h);
      camera.aspect = w / h;
      camera.updateProjectionMatrix();
      render();
    }).observe(el);
    render();

    el.dataset.viewerTriangles = String(countTriangles(object));
    setState(el, 'ready', '');
  } catch (err) {
    renderer.dispose();
    setState(el, 'error', `No 3D preview: ${err.message || err}`);
  }
}

export function mountViewers(root = document) {
  const nodes = root.matches && root.matches('[data-src][data-format].design-viewer')
    ? [root] : root.querySelectorAll('.design-viewer[data-src][data-format]');
  nodes.forEach((el) => { mountViewer(el); });
}

mountViewers();
document.addEventListener('htmx:load', (event) => mountViewers(event.target));
