"""The Kinect v2 skeleton convention (hacm.data.kinect), read by readers, stores, model and figures."""

from hacm.data import kinect
from hacm.model.config import ModelConfig


def test_bones_form_one_tree_over_every_joint():
    assert len(kinect.BONES) == kinect.NUM_JOINTS - 1
    parent = {joint: joint for joint in range(kinect.NUM_JOINTS)}

    def root(joint: int) -> int:
        while parent[joint] != joint:
            joint = parent[joint]
        return joint

    for a, b in kinect.BONES:
        assert root(a) != root(b), f"bone {a}-{b} closes a cycle"
        parent[root(a)] = root(b)
    assert len({root(joint) for joint in range(kinect.NUM_JOINTS)}) == 1


def test_names_trunk_and_frame_shape_agree():
    assert len(kinect.JOINT_NAMES) == kinect.NUM_JOINTS
    assert kinect.JOINT_NAMES[kinect.CENTRE_JOINT] == "spine mid"  # the release centres on joint 2 (1-based)
    assert [kinect.JOINT_NAMES[j] for j in kinect.TRUNK_JOINTS] == [
        "spine base", "spine mid", "L shoulder", "R shoulder", "L hip", "R hip", "spine shoulder"]
    assert kinect.FRAME_SHAPE == (kinect.NUM_BODIES, kinect.NUM_JOINTS, kinect.COORDS)


def test_the_model_default_hierarchy_is_the_kinect_trunk():
    config = ModelConfig()
    assert config.trunk_joints == kinect.TRUNK_JOINTS and config.num_joints == kinect.NUM_JOINTS
    assert len(config.token_joint_ids) == kinect.NUM_JOINTS - len(kinect.TRUNK_JOINTS)  # 18 limb tokens
