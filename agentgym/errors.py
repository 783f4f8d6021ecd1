"""Errors a user can cause. The CLI prints them as one line, without a traceback."""


class AgentGymError(Exception):
    """A problem the user can fix; the message says what to do."""


class UnknownEnvError(AgentGymError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(AgentGymError):
    """A config key or value that is wrong, named by its full path."""
