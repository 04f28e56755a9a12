"""TensorBoard's protocol buffers for larsbench's points and the HParams plugin's summaries.

Built from tensorboard's own message classes and HParams metadata (tensorboard's
`plugins/hparams/summary.py` builds the same messages but imports TensorFlow to wrap them).
Imported only when an export runs: tensorboard is the optional `larsbench[tensorboard]`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from larsbench.export.tensorboard_points import Histogram, Point

HISTOGRAM_BINS = 30

_STATUS = {
    "completed": api_pb2.STATUS_SUCCESS,
    "failed": api_pb2.STATUS_FAILURE,
    "diverged": api_pb2.STATUS_FAILURE,
    "stopped": api_pb2.STATUS_UNKNOWN,  # the API has no "aborted"
}


def histogram_proto(values: tuple[float, ...]) -> HistogramProto:
    """Counts in HISTOGRAM_BINS equal bins; bucket_limit holds each bin's right edge."""
    array = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS)
    return HistogramProto(
        min=float(array.min()),
        max=float(array.max()),
        num=float(array.size),
        sum=float(array.sum()),
        sum_squares=float(np.dot(array, array)),
        bucket_limit=[float(e) for e in edges[1:]],
        bucket=[float(c) for c in counts],
    )


def point_event(point: Point) -> Event:
    if isinstance(point, Histogram):
        value = Summary.Value(tag=point.tag, histo=histogram_proto(point.values))
    else:
        value = Summary.Value(tag=point.tag, simple_value=point.value)
    return Event(wall_time=point.wall_time, step=point.step, summary=Summary(value=[value]))


def _hparams_event(tag: str, data: plugin_data_pb2.HParamsPluginData, wall_time: float) -> Event:
    value = Summary.Value(
        tag=tag,
        metadata=metadata.create_summary_metadata(data),
        tensor=metadata.NULL_TENSOR,
    )
    return Event(wall_time=wall_time, step=0, summary=Summary(value=[value]))


def experiment_event(
    values: dict[str, Any],
    domains: dict[str, list[Any]],
    metric_tags: tuple[str, ...],
    wall_time: float,
) -> Event:
    """The HParams table's columns: one per hyperparameter, one per metric tag."""
    infos = []
    for name, value in values.items():
        info = api_pb2.HParamInfo(name=name)
        if isinstance(value, str):
            info.type = api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(domains.get(name) or [value])
        else:
            info.type = api_pb2.DATA_TYPE_FLOAT64
        infos.append(info)
    metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metric_tags]
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=metrics, time_created_secs=wall_time
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return _hparams_event(metadata.EXPERIMENT_TAG, data, wall_time)


def session_start_event(values: dict[str, Any], wall_time: float) -> Event:
    """This run's row of the HParams table."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=wall_time)
    for name, value in values.items():
        if isinstance(value, str):
            info.hparams[name].string_value = value
        else:
            info.hparams[name].number_value = float(value)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    return _hparams_event(metadata.SESSION_START_INFO_TAG, data, wall_time)


def session_end_event(state: str, wall_time: float) -> Event:
    info = plugin_data_pb2.SessionEndInfo(
        status=_STATUS.get(state, api_pb2.STATUS_UNKNOWN), end_time_secs=wall_time
    )
    data = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    return _hparams_event(metadata.SESSION_END_INFO_TAG, data, wall_time)
