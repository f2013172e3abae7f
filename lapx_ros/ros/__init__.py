"""ROS 2 side: the pose node, message conversion, markers, parameters, replay."""
