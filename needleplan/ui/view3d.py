"""The 3-D view (VTK): spine surface per vertebra, needles as real-diameter cylinders.

The surface comes from :class:`vtkDiscreteFlyingEdges3D` on the (downsampled) label map.
Everything is placed in patient LPS mm through the volume's ``ijk_to_lps`` matrix.
VTK is imported here only (PyQt6 first, as ``vtkmodules.qt`` prefers PySide6 otherwise).
"""

from __future__ import annotations

import numpy as np
import PyQt6  # noqa: F401  (must precede vtkmodules.qt)
from PyQt6.QtWidgets import QVBoxLayout, QWidget

import vtkmodules.vtkInteractionStyle  # noqa: F401
import vtkmodules.vtkRenderingFreeType  # noqa: F401
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkCommonTransforms import vtkTransform
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkWindowedSincPolyDataFilter
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D, vtkTransformPolyDataFilter
from vtkmodules.vtkFiltersSources import vtkLineSource, vtkSphereSource
from vtkmodules.vtkFiltersCore import vtkTubeFilter
from vtkmodules.vtkRenderingCore import (vtkActor, vtkBillboardTextActor3D, vtkPolyDataMapper,
                                         vtkRenderer)

from needleplan.ui.camera import CameraPose, needle_camera, overview_camera
from needleplan.ui.slicing import label_colors
from needleplan.ui.theme import STATUS_COLORS

__all__ = ["View3D", "apply_camera", "label_surface"]


def apply_camera(cam, pose: CameraPose) -> None:
    """The one place that hands a :class:`CameraPose` to a ``vtkCamera``."""
    cam.SetPosition(*map(float, pose.position_lps))
    cam.SetFocalPoint(*map(float, pose.focal_point_lps))
    cam.SetViewUp(*map(float, pose.view_up_lps))
    cam.SetViewAngle(float(pose.view_angle_deg))
    cam.OrthogonalizeViewUp()


def _hex_rgb(h: str) -> tuple[float, float, float]:
    h = h.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4))


def label_surface(labels: np.ndarray, ijk_to_lps: np.ndarray, *, step: int = 1, smooth: bool = True):
    """vtkPolyData in LPS mm of every label's boundary (point scalars = label)."""
    lab = np.ascontiguousarray(labels[::step, ::step, ::step])
    img = vtkImageData()
    img.SetDimensions(*lab.shape)
    img.GetPointData().SetScalars(numpy_to_vtk(lab.ravel(order="F"), deep=True))
    present = [int(v) for v in np.unique(lab) if v > 0]
    fe = vtkDiscreteFlyingEdges3D()
    fe.SetInputData(img)
    for n, v in enumerate(present):
        fe.SetValue(n, v)
    fe.ComputeScalarsOn()
    out = fe
    if smooth and present:
        sm = vtkWindowedSincPolyDataFilter()
        sm.SetInputConnection(fe.GetOutputPort())
        sm.SetNumberOfIterations(12)
        sm.SetPassBand(0.08)
        sm.NonManifoldSmoothingOn()
        sm.NormalizeCoordinatesOn()
        out = sm
    aff = np.asarray(ijk_to_lps, float).copy()
    aff[:3, :3] = aff[:3, :3] * step
    m = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(aff[r, c]))
    tr = vtkTransform()
    tr.SetMatrix(m)
    tf = vtkTransformPolyDataFilter()
    tf.SetTransform(tr)
    tf.SetInputConnection(out.GetOutputPort())
    nrm = vtkPolyDataNormals()
    nrm.SetInputConnection(tf.GetOutputPort())
    nrm.ConsistencyOn()
    nrm.SplittingOff()
    if np.linalg.det(aff[:3, :3]) < 0:  # a mirroring affine turns the triangles inside out
        nrm.FlipNormalsOn()
    nrm.Update()
    return nrm.GetOutput(), present


class View3D(QWidget):
    """Spine surface, level labels and needles; ``look_down_needle`` sets the camera."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.vtk_widget = QVTKRenderWindowInteractor(self)
        lay.addWidget(self.vtk_widget)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.06, 0.07, 0.08)
        self.renderer.SetBackground2(0.16, 0.18, 0.21)
        self.renderer.GradientBackgroundOn()
        self.vtk_widget.GetRenderWindow().AddRenderer(self.renderer)
        from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera

        self.vtk_widget.GetRenderWindow().GetInteractor().SetInteractorStyle(vtkInteractorStyleTrackballCamera())
        self._surface_actor = None
        self._label_actors = []
        self._needle_actors = []
        self._center = np.zeros(3)
        self._initialized = False

    def showEvent(self, ev):
        super().showEvent(ev)
        if not self._initialized:
            self.vtk_widget.Initialize()
            self._initialized = True

    def set_anatomy(self, anatomy, volume=None):
        for a in [self._surface_actor] + self._label_actors:
            if a is not None:
                self.renderer.RemoveActor(a)
        self._surface_actor, self._label_actors = None, []
        if anatomy is None:
            self.render()
            return
        n_vox = anatomy.labels.size
        step = 1 if n_vox < 12e6 else 2
        poly, present = label_surface(anatomy.labels, anatomy.ijk_to_lps, step=step)
        lut = vtkLookupTable()
        lut.SetNumberOfTableValues(256)
        lut.SetTableRange(0, 255)
        cols = label_colors()
        for i in range(256):
            r, g, b = cols[i] / 255.0
            lut.SetTableValue(i, r, g, b, 1.0)
        lut.Build()
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(poly)
        mapper.SetLookupTable(lut)
        mapper.SetScalarRange(0, 255)
        mapper.SetScalarModeToUsePointData()
        mapper.SetColorModeToMapScalars()  # uint8 labels would otherwise be taken as grey levels
        actor = vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetSpecular(0.25)
        prop.SetSpecularPower(20)
        prop.SetOpacity(1.0)
        self.renderer.AddActor(actor)
        self._surface_actor = actor
        for v in anatomy.sorted_vertebrae():
            t = vtkBillboardTextActor3D()
            t.SetInput(v.name)
            pos = np.asarray(v.body_center_lps, float) + np.asarray(v.left_lps, float) * -45.0
            t.SetPosition(*map(float, pos))
            tp = t.GetTextProperty()
            tp.SetFontSize(16)
            tp.BoldOn()
            tp.SetColor(*(cols[v.label] / 255.0))
            self.renderer.AddActor(t)
            self._label_actors.append(t)
        if anatomy.vertebrae:
            self._center = np.mean([v.body_center_lps for v in anatomy.vertebrae.values()], axis=0)
        self.reset_camera(volume)

    def set_trajectories(self, trajectories, selected):
        for a in self._needle_actors:
            self.renderer.RemoveActor(a)
        self._needle_actors = []
        for i, t in enumerate(trajectories):
            line = vtkLineSource()
            line.SetPoint1(*map(float, t.skin_entry_lps))
            line.SetPoint2(*map(float, t.target_lps))
            tube = vtkTubeFilter()
            tube.SetInputConnection(line.GetOutputPort())
            tube.SetRadius(float(t.needle_diameter_mm) / 2.0)
            tube.SetNumberOfSides(20)
            tube.CappingOn()
            m = vtkPolyDataMapper()
            m.SetInputConnection(tube.GetOutputPort())
            a = vtkActor()
            a.SetMapper(m)
            a.GetProperty().SetColor(*_hex_rgb(STATUS_COLORS.get(t.status, "#8b939c")))
            if i == selected:
                a.GetProperty().SetSpecular(0.6)
            else:
                a.GetProperty().SetOpacity(0.6)
            self.renderer.AddActor(a)
            self._needle_actors.append(a)
            tip = vtkSphereSource()
            tip.SetCenter(*map(float, t.target_lps))
            tip.SetRadius(float(t.needle_diameter_mm) * 0.8)
            m2 = vtkPolyDataMapper()
            m2.SetInputConnection(tip.GetOutputPort())
            a2 = vtkActor()
            a2.SetMapper(m2)
            a2.GetProperty().SetColor(1, 1, 1)
            self.renderer.AddActor(a2)
            self._needle_actors.append(a2)
        self.render()

    def _set_surface_opacity(self, opacity: float):
        if self._surface_actor is not None:
            self._surface_actor.GetProperty().SetOpacity(opacity)

    def reset_camera(self, volume=None):
        self._set_surface_opacity(1.0)
        pose = overview_camera(self._center)
        apply_camera(self.renderer.GetActiveCamera(), pose)
        self.renderer.ResetCamera()
        self.renderer.GetActiveCamera().Zoom(1.3)
        self.render()

    def look_down_needle(self, traj) -> CameraPose:
        pose = needle_camera(traj.skin_entry_lps, traj.target_lps)
        self._set_surface_opacity(0.45)  # see the needle inside the pedicle
        apply_camera(self.renderer.GetActiveCamera(), pose)
        self.renderer.ResetCameraClippingRange()
        self.render()
        return pose

    def render(self):
        if self._initialized and self.isVisible():
            self.vtk_widget.GetRenderWindow().Render()

    def grab_frame(self) -> np.ndarray:
        """The current VTK frame as an (H, W, 3) uint8 array (QWidget.grab() shows black)."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        rw = self.vtk_widget.GetRenderWindow()
        rw.Render()
        f = vtkWindowToImageFilter()
        f.SetInput(rw)
        f.ReadFrontBufferOff()
        f.Update()
        img = f.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[::-1, :, :3]
        return np.ascontiguousarray(arr)

    def close_vtk(self):
        """Release the render window; call before the widget is destroyed."""
        self.vtk_widget.close()
